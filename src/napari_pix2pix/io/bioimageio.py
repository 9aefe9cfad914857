"""Export a trained model as a bioimage.io model package (a zip with ``rdf.yaml``).

The package holds the generator three times: as a ``pytorch_state_dict`` whose
architecture is ``napari_pix2pix.engine.networks.UNetGenerator`` (built from plain
keyword arguments), as TorchScript (traced in eval mode, runs without napari-pix2pix)
and as ONNX (io/onnx_export.py: runs without PyTorch), and the napari-pix2pix model file
(safetensors with its config and history) is attached, so that ``load_model`` opens the
package again without unpickling anything. The per-channel percentile normalization
becomes a ``scale_linear`` pre-processing step and its exact inverse a ``scale_linear``
post-processing step, so that bioimage.io consumers get predictions in the target's own
units, as ``napari_pix2pix.predict`` does. Test tensors, a cover image and a README are
generated.

Needs the optional extra: ``pip install "napari-pix2pix[bioimageio]"`` (which includes
the [onnx] extra). Nothing here is imported by ``import napari_pix2pix``; the bioimageio
and ONNX packages are imported only when exporting.
"""

from __future__ import annotations

import re
import string
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tifffile
import torch

from .._version import __version__
from ..engine.normalization import Normalization
from ..errors import InputError
from .bioimageio_readme import environment as environment_text
from .bioimageio_readme import finite_metrics, readme
from .bioimageio_samples import test_input_of, write_cover
from .model_zip import MODEL_ATTACHMENT, is_exported
from .onnx_export import OPSET, architecture_kwargs, exported_network, write_onnx
from .onnx_export import check_installation as check_onnx_installation
from .output_paths import AtomicFile, check_export_path

INSTALL_HINT = 'pip install "napari-pix2pix[bioimageio]"'
PIX2PIX_DOI = "10.1109/CVPR.2017.632"
PIX2PIX_CITATION = (
    "Isola, Zhu, Zhou, Efros: Image-to-Image Translation with Conditional "
    "Adversarial Networks. CVPR 2017."
)
_NAME_CHARS = set(string.ascii_letters + string.digits + "_+- ()")
_AXIS_IDS = {2: ("y", "x"), 3: ("z", "y", "x")}


def export_bioimageio(
    model,
    path,
    *,
    name: str | None = None,
    description: str | None = None,
    authors=None,
    test_input=None,
    license: str = "CC-BY-4.0",
    tags: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a bioimage.io model zip to ``path`` (atomically).

    Args:
        model: a Pix2PixModel (``napari_pix2pix.export_bioimageio`` also takes a path).
        path: the ``.zip`` file to write.
        name: human-readable model name (5-128 letters, digits, spaces and ``_+-()``).
        description: one or two sentences about what the model translates.
        authors: names (str) or dicts with ``name`` and optionally ``affiliation``,
            ``orcid``, ``github_user``.
        test_input: an image (array or TIFF path) for the test tensors and the cover:
            spatial axes only (YX / ZYX; repeated over the input channels) or channel
            first (CYX / CZYX). It is centre-cropped (or reflect-padded) to the model's
            patch size. Default: the package's simulated phase-contrast sample.
        license: SPDX identifier of the model's license.
        tags: extra tags (pix2pix, image-to-image, 2d/3d, ... are always added).
        overwrite: replace an existing ``path`` (only a package napari-pix2pix exported).

    Returns:
        ``path`` as a Path.
    """
    check_installation()
    path = check_export_path(path, ".zip", "a bioimage.io model package", is_exported, overwrite)
    config = model.config
    if not config.normalized:
        raise InputError("the model has no normalization parameters (was it trained?).")
    name = _check_name(
        name if name is not None else f"napari-pix2pix {config.spatial_dims}D image-to-image model"
    )
    description = description if description is not None else _default_description(model)
    if not isinstance(description, str) or len(description) > 1024:
        raise InputError("description must be a text of at most 1024 characters.")
    source = test_input_of(model, test_input)

    with (
        AtomicFile(path, suffix=".tmp.zip", replace=overwrite) as zipped,
        tempfile.TemporaryDirectory(prefix="napari-pix2pix-bioimageio-") as tmp,
    ):
        descr = _build_description(
            model,
            Path(tmp),
            source,
            name=name,
            description=description,
            authors=authors,
            license=license,
            tags=tags,
        )
        from bioimageio.spec import save_bioimageio_package

        save_bioimageio_package(descr, output_path=zipped.temp)
    return path


def check_installation() -> None:
    """Raise InputError unless bioimageio.spec is installed in a usable combination,
    with the ONNX exporter."""
    try:
        import bioimageio.spec
        import pydantic
    except ImportError as exc:
        raise InputError(
            f"exporting to bioimage.io needs the optional bioimageio packages: {INSTALL_HINT}"
        ) from exc
    spec, pyd = _version(bioimageio.spec.__version__), _version(pydantic.VERSION)
    if spec < (0, 5, 14) and pyd >= (2, 12):
        # bioimageio.spec < 0.5.14 calls pydantic's serializer handlers in a way that
        # pydantic >= 2.12 rejects ("'index_key' is expected to be an integer or a string")
        raise InputError(
            f"bioimageio.spec {bioimageio.spec.__version__} does not work with "
            f"pydantic {pydantic.VERSION}: {INSTALL_HINT} installs matching "
            'versions (or: pip install "pydantic>=2.10.3,<2.12").'
        )
    check_onnx_installation(INSTALL_HINT)


def _version(text: str) -> tuple[int, ...]:
    """(major, minor, micro) of a version string such as '2.11.10' or '2.13.0+cpu'."""
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    return tuple(int(g) for g in match.groups() if g is not None) if match else ()


# ----------------------------------------------------------------------------- pieces
def apply_scale_linear(x: np.ndarray, gain, offset) -> np.ndarray:
    """What bioimageio.core does for ``scale_linear`` along the channel axis (axis 1 of
    a batch-channel-space array): computed in float64, then cast to float32."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    g = np.asarray(gain, dtype=np.float64).reshape(shape)
    o = np.asarray(offset, dtype=np.float64).reshape(shape)
    return (x * g + o).astype(np.float32)


def _check_name(name) -> str:
    if not isinstance(name, str) or not 5 <= len(name) <= 128 or not set(name) <= _NAME_CHARS:
        raise InputError(
            f"name must be 5 to 128 letters, digits, spaces or _+-() characters, got {name!r}."
        )
    return name


def _default_description(model) -> str:
    c = model.config
    return (
        f"pix2pix (conditional GAN, U-Net generator) {c.spatial_dims}D image-to-image "
        f"translation, {c.in_channels} -> {c.out_channels} channel(s), trained with "
        "napari-pix2pix."
    )


def _run(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy().astype(np.float32)


def _tolerance(y: np.ndarray, config):
    """A reproduction tolerance of 1e-3 in network units (the tanh output), so that
    other devices pass; bioimage.io allows at most 1% of the test output's maximum."""
    from bioimageio.spec.model.v0_5 import ReproducibilityTolerance

    span = max(h - lo for lo, h in zip(config.target_low, config.target_high))
    atol = 1e-3 * span / 2.0
    if atol <= 1e-3 or atol > 0.01 * float(y.max()):
        return []
    return [ReproducibilityTolerance(absolute_tolerance=atol, relative_tolerance=1e-3)]


def _authors(authors):
    from bioimageio.spec.model.v0_5 import Author
    from pydantic import ValidationError

    if authors is None:
        authors = ["napari-pix2pix user"]
    elif isinstance(authors, (str, dict)):
        authors = [authors]
    result = []
    for a in authors:
        try:
            result.append(Author(name=a) if isinstance(a, str) else Author(**a))
        except (TypeError, ValidationError) as exc:
            raise InputError(
                f"invalid author {a!r}: give a name or a dict with 'name' "
                f"(and 'affiliation', 'orcid', 'github_user'): {exc}"
            ) from exc
    return result


def _build_description(
    model, tmp: Path, x: np.ndarray, *, name, description, authors, license, tags
):
    from bioimageio.spec.model.v0_5 import (
        ArchitectureFromLibraryDescr,
        AxisId,
        BatchAxis,
        BioimageioConfig,
        ChannelAxis,
        CiteEntry,
        Config,
        Doi,
        FileDescr,
        Identifier,
        InputTensorDescr,
        IntervalOrRatioDataDescr,
        LicenseId,
        ModelDescr,
        OnnxWeightsDescr,
        OutputTensorDescr,
        ParameterizedSize,
        PytorchStateDictWeightsDescr,
        ScaleLinearAlongAxisKwargs,
        ScaleLinearDescr,
        SizeReference,
        SpaceInputAxis,
        SpaceOutputAxis,
        TensorId,
        TorchscriptWeightsDescr,
        Version,
        WeightsDescr,
    )
    from pydantic import ValidationError

    c = model.config
    try:
        license_id = LicenseId(license)
    except (ValueError, ValidationError) as exc:
        raise InputError(
            f"license must be an SPDX license identifier such as 'CC-BY-4.0' or "
            f"'MIT', got {license!r}."
        ) from exc
    authors = _authors(authors)
    extra_tags = [str(t) for t in (tags or [])]

    # the exported network: rebuilt from the plain kwargs (as bioimageio.core will),
    # loaded with the model's weights, in eval mode
    kwargs = architecture_kwargs(c)
    net = exported_network(model)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}

    pre_gain, pre_offset = Normalization.of(c, "source").gain_offset()
    post_gain, post_offset = Normalization.of(c, "target").gain_offset(inverse=True)
    y = _run(net, apply_scale_linear(x.astype(np.float32), pre_gain, pre_offset))
    y = apply_scale_linear(y, post_gain, post_offset)

    weights_file = tmp / "weights.pt"
    torch.save(state, weights_file)
    torchscript_file = tmp / "weights_torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in torch 2.x, still supported
        traced = torch.jit.trace(
            net, torch.from_numpy(apply_scale_linear(x, pre_gain, pre_offset)), check_trace=False
        )
        torch.jit.save(traced, str(torchscript_file))
    onnx_file = tmp / "weights.onnx"  # the same file `napari-pix2pix export --format onnx` writes
    write_onnx(model, onnx_file)
    x_file, y_file = tmp / "test_input.npy", tmp / "test_output.npy"
    np.save(x_file, x.astype(np.float32))
    np.save(y_file, y.astype(np.float32))
    x_sample, y_sample = tmp / "sample_input.tif", tmp / "sample_output.tif"
    tifffile.imwrite(x_sample, x[0].astype(np.float32))
    tifffile.imwrite(y_sample, y[0].astype(np.float32))
    cover = tmp / "cover.png"
    write_cover(cover, x, y)
    readme_file = tmp / "README.md"
    readme_file.write_text(readme(model, name, description, x.shape), encoding="utf-8")
    environment = tmp / "environment.yaml"
    environment.write_text(environment_text(), encoding="utf-8")
    model_file = tmp / MODEL_ATTACHMENT  # what load_model reads back (no pickle)
    model_file.write_bytes(model.to_bytes())

    space = _AXIS_IDS[c.spatial_dims]
    step = c.multiple
    input_axes = [
        BatchAxis(),
        ChannelAxis(channel_names=[f"source{i}" for i in range(c.in_channels)]),
    ]
    input_axes += [
        SpaceInputAxis(id=AxisId(a), size=ParameterizedSize(min=step, step=step)) for a in space
    ]
    output_axes = [
        BatchAxis(),
        ChannelAxis(channel_names=[f"target{i}" for i in range(c.out_channels)]),
    ]
    output_axes += [
        SpaceOutputAxis(
            id=AxisId(a), size=SizeReference(tensor_id=TensorId("input"), axis_id=AxisId(a))
        )
        for a in space
    ]

    def scale(gain, offset):
        if all(g == 1.0 for g in gain) and all(o == 0.0 for o in offset):
            return []  # identity: bioimage.io refuses a redundant scale_linear
        return [
            ScaleLinearDescr(
                kwargs=ScaleLinearAlongAxisKwargs(axis=AxisId("channel"), gain=gain, offset=offset)
            )
        ]

    inputs = [
        InputTensorDescr(
            id=TensorId("input"),
            axes=input_axes,
            data=IntervalOrRatioDataDescr(type="float32"),
            test_tensor=FileDescr(source=x_file),
            sample_tensor=FileDescr(source=x_sample),
            preprocessing=scale(pre_gain, pre_offset),
            description=f"source image, {c.in_channels} channel(s), in its own units",
        )
    ]
    outputs = [
        OutputTensorDescr(
            id=TensorId("output"),
            axes=output_axes,
            data=IntervalOrRatioDataDescr(type="float32"),
            test_tensor=FileDescr(source=y_file),
            sample_tensor=FileDescr(source=y_sample),
            postprocessing=scale(post_gain, post_offset),
            description=f"predicted target, {c.out_channels} channel(s), in the target's units",
        )
    ]

    pytorch_version = Version(torch.__version__.split("+")[0])
    weights = WeightsDescr(
        pytorch_state_dict=PytorchStateDictWeightsDescr(
            source=weights_file,
            pytorch_version=pytorch_version,
            architecture=ArchitectureFromLibraryDescr(
                import_from="napari_pix2pix.engine.networks",
                callable=Identifier("UNetGenerator"),
                kwargs=kwargs,
            ),
            dependencies=FileDescr(source=environment),
        ),
        torchscript=TorchscriptWeightsDescr(
            source=torchscript_file, pytorch_version=pytorch_version, parent="pytorch_state_dict"
        ),
        onnx=OnnxWeightsDescr(source=onnx_file, opset_version=OPSET, parent="pytorch_state_dict"),
    )

    n_params = sum(p.numel() for p in net.parameters())
    all_tags = [
        "pix2pix",
        "image-to-image",
        "conditional-gan",
        "unet",
        "pytorch",
        f"{c.spatial_dims}d",
        "napari-pix2pix",
    ]
    all_tags += [t for t in extra_tags if t not in all_tags]
    try:
        return ModelDescr(
            name=name,
            description=description,
            authors=authors,
            cite=[CiteEntry(text=PIX2PIX_CITATION, doi=Doi(PIX2PIX_DOI))],
            license=license_id,
            tags=all_tags,
            documentation=FileDescr(source=readme_file),
            covers=[FileDescr(source=cover)],
            inputs=inputs,
            outputs=outputs,
            weights=weights,
            attachments=[FileDescr(source=model_file)],
            config=Config(
                bioimageio=BioimageioConfig(
                    reproducibility_tolerance=_tolerance(y, c),
                    architecture_type="U-Net",
                    task="image-to-image translation",
                    model_parameter_count=n_params,
                ),
                napari_pix2pix={
                    "config": c.to_dict(),
                    "version": __version__,
                    "model_file": MODEL_ATTACHMENT,
                    "steps_trained": model.history.steps_done,
                    "final_metrics": finite_metrics(model.history.final_metrics),
                },
            ),
        )
    except ValidationError as exc:
        raise InputError(f"the bioimage.io description is not valid: {exc}") from exc
