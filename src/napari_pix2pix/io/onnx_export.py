"""Export the generator as ONNX, for runtimes without PyTorch or napari-pix2pix
(onnxruntime, OpenCV, TensorRT, deepImageJ, ...).

The graph is the trained generator in eval mode (dropout off, BatchNorm with its running
statistics, which the exporter folds into the convolutions): input ``input`` of shape
(batch, in_channels, [z,] y, x) in network units, output ``output`` of shape (batch,
out_channels, [z,] y, x), the tanh output in [-1, 1]. The batch and every spatial size
are dynamic: any batch, any spatial size that is a multiple of ``2**depth``.

The per-channel normalization is not in the graph: as in the bioimage.io package (where
the same file is the ``onnx`` weights), it is pre- and post-processing, ``x * gain +
offset`` per channel, and its numbers are written into the file's ``metadata_props``
(key ``napari_pix2pix.normalization``, JSON; docs/bioimageio.md#onnx), with the model's
config, so that the file alone is enough to get predictions in the target's units.

Each export is checked before it is kept: onnxruntime runs the file on a random input
of two batch items and a non-square size, and it must reproduce the PyTorch network.

Needs the optional extra: ``pip install "napari-pix2pix[onnx]"`` (onnx, onnxscript for
torch's exporter, onnxruntime); nothing here imports them before an export starts.
bioimageio.core has a converter of its own, but it needs the [bioimageio] extra and
declares spatial sizes without the network's stride, which this network requires.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..engine.networks import UNetGenerator
from ..engine.normalization import Normalization
from ..errors import InputError, OutputError
from .output_paths import AtomicFile, check_export_path

INSTALL_HINT = 'pip install "napari-pix2pix[onnx]"'
# opset 18: the oldest torch's exporter writes, run by onnxruntime >= 1.14 and most
# other runtimes; a newer one would add nothing this network uses
OPSET = 18
METADATA_KEY = "napari_pix2pix.normalization"
CONFIG_KEY = "napari_pix2pix.config"
VERSION_KEY = "napari_pix2pix.version"
# the largest tensor data protobuf holds in one file (2 GiB), less room for the graph
MAX_WEIGHT_BYTES = 2**31 - 2**24
# the exported file must reproduce the network to this (network units: tanh in [-1, 1])
CHECK_ATOL = 1e-4
_AXES = {2: ("y", "x"), 3: ("z", "y", "x")}


def check_installation(hint: str = INSTALL_HINT) -> None:
    """Raise InputError unless torch's ONNX exporter and onnxruntime can be used."""
    missing = []
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise InputError(
            f"exporting to ONNX needs the optional packages {', '.join(missing)}: {hint}"
        )


def export_onnx(model, path, *, overwrite: bool = False) -> Path:
    """Write ``model``'s generator as one ONNX file (atomically), with the normalization
    and the config in its metadata; see the module's docstring.

    Args:
        model: a Pix2PixModel (``napari_pix2pix.export_onnx`` also takes a path).
        path: the ``.onnx`` file to write.
        overwrite: replace an existing ``path`` (only an ONNX file napari-pix2pix wrote).

    Returns:
        ``path`` as a Path.
    """
    check_installation()
    path = check_export_path(path, ".onnx", "an ONNX model", is_exported, overwrite)
    if not model.config.normalized:
        raise InputError("the model has no normalization parameters (was it trained?).")
    with AtomicFile(path, suffix=".tmp.onnx", replace=overwrite) as out:
        write_onnx(model, out.temp)
    return path


def exported_network(model) -> UNetGenerator:
    """The generator as the exports hold it: rebuilt from the architecture's plain
    keyword arguments (as bioimage.io consumers rebuild it), on the CPU, in float32,
    with the model's weights, in eval mode. The model itself is not touched."""
    net = UNetGenerator(**architecture_kwargs(model.config))
    state = {k: v.detach().cpu().float() for k, v in model.generator.state_dict().items()}
    net.load_state_dict(state, strict=True)
    return net.eval()


def architecture_kwargs(config) -> dict:
    """The plain keyword arguments that rebuild the generator (UNetGenerator(**kwargs))."""
    return {
        "spatial_dims": config.spatial_dims,
        "in_channels": config.in_channels,
        "out_channels": config.out_channels,
        "depth": config.depth,
        "base_channels": config.base_channels,
        "norm": config.norm,
        "dropout": float(config.dropout),
    }


def normalization_metadata(config) -> dict:
    """The pre- and post-processing, per channel, as a runtime applies it around the
    network: ``x_net = x * gain + offset`` (input), ``y = y_net * gain + offset``
    (output); with the percentile ranges they come from."""
    source, target = Normalization.of(config, "source"), Normalization.of(config, "target")
    pre_gain, pre_offset = source.gain_offset()
    post_gain, post_offset = target.gain_offset(inverse=True)
    return {
        "input": {
            "gain": list(pre_gain),
            "offset": list(pre_offset),
            "low": list(source.low),
            "high": list(source.high),
        },
        "output": {
            "gain": list(post_gain),
            "offset": list(post_offset),
            "low": list(target.low),
            "high": list(target.high),
        },
        "axes": ["batch", "channel", *_AXES[config.spatial_dims]],
        "size_multiple": config.multiple,
        "formula": "network input = input * gain + offset per channel; "
        "output = network output * gain + offset per channel",
    }


def write_onnx(model, path: Path) -> None:
    """Export ``model``'s generator to ``path`` (one file, opset OPSET) and check it."""
    c = model.config
    net = exported_network(model)
    n_bytes = 4 * sum(p.numel() for p in net.state_dict().values())
    if n_bytes > MAX_WEIGHT_BYTES:
        raise InputError(
            f"the generator's weights ({n_bytes / 2**30:.1f} GiB) are too large for one "
            "ONNX file (protobuf's 2 GiB limit); export a model with fewer base_channels "
            "or a smaller depth."
        )
    m = c.multiple
    batch = torch.export.Dim("batch", min=1)
    spatial = {2 + i: m * torch.export.Dim(a, min=1) for i, a in enumerate(_AXES[c.spatial_dims])}
    # traced at two batch items and twice the smallest size: a size of 1 would be
    # specialized (fixed) by torch.export
    example = torch.zeros((2, c.in_channels) + (2 * m,) * c.spatial_dims)
    with _quiet():
        program = torch.onnx.export(
            net,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=({0: batch, **spatial},),
            verbose=False,
        )
    program.model.metadata_props.update(
        {
            METADATA_KEY: json.dumps(normalization_metadata(c)),
            CONFIG_KEY: json.dumps(c.to_dict()),
            VERSION_KEY: __version__,
        }
    )
    program.model.doc_string = (
        f"napari-pix2pix {c.spatial_dims}D generator, {c.in_channels} -> {c.out_channels} "
        f"channel(s). Spatial sizes: multiples of {m}. Normalization (pre- and "
        f"post-processing, not in the graph): metadata_props[{METADATA_KEY!r}]."
    )
    try:
        program.save(path, external_data=False)
    except OSError as exc:
        raise OutputError(f"writing the ONNX file failed ({exc}).") from exc
    check_reproduces(net, path, c)


def check_reproduces(net: UNetGenerator, path: Path, config) -> None:
    """onnxruntime runs ``path`` on a random input (2 batch items, the smallest size
    along all axes but the last, which is twice it) and must match ``net``."""
    import onnxruntime

    m, dims = config.multiple, config.spatial_dims
    shape = (2, config.in_channels) + (m,) * (dims - 1) + (2 * m,)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"input": x})[0]
    diff = float(np.abs(actual - expected).max()) if actual.shape == expected.shape else np.inf
    if not diff <= CHECK_ATOL:
        raise OutputError(
            f"the exported ONNX network does not reproduce the PyTorch network (largest "
            f"difference {diff:.2g}, allowed {CHECK_ATOL:g}); nothing was written. Please "
            "report this with your torch and onnxscript versions."
        )


def is_exported(path: Path) -> bool:
    """Whether ``path`` is an ONNX file napari-pix2pix wrote (only those may be replaced)."""
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # not ONNX, unreadable, truncated: not ours
        return False
    return any(p.key == VERSION_KEY for p in proto.metadata_props)


@contextlib.contextmanager
def _quiet():
    """torch's exporter logs a line for each torchvision operator it cannot register
    (torchvision is not needed here) and warns about its own deprecated internals."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
