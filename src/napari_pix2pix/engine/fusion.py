"""The generator as prediction runs it: a copy, in eval mode, laid out for the device.
Each BatchNorm is folded into the convolution before it (its statistics are constants
at inference: one kernel instead of two). On the CPU the copy is in channels_last memory
(oneDNN's convolutions are fastest in it) and, for a 2D network whose batch shape is
known, its convolutions are prepacked with their activations fused (engine/onednn.py);
without packing, folding gained nothing on the CPU and is not done there. Outputs equal
the trained network's to float rounding (tests/engine/test_fusion.py); the model itself
is left as it is."""

from __future__ import annotations

import copy
import weakref

import torch
from monai.networks.blocks import Convolution
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

from . import onednn

# the last copy made of each generator: many small predictions of one model (a dask
# chunk per slice, the live view) must not copy it each time
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _version(generator: nn.Module) -> tuple:
    """Changes whenever a weight or buffer is changed in place (a training step) or
    replaced (load_state_dict)."""
    return tuple((id(t), t._version) for t in (*generator.parameters(), *generator.buffers()))


def inference_copy(
    generator: nn.Module,
    device: torch.device,
    fold: bool | None = None,
    batch_shape: tuple[int, ...] | None = None,
):
    """A copy of ``generator`` for prediction on ``device``; ``fold``: fold BatchNorm
    (default: yes, except on the CPU without packing); ``batch_shape``: the (batch,
    channels, *tile) shape prediction will use, which lets the CPU pack a 2D network for
    it. Made again only when a weight or buffer has changed (a module's other attributes,
    changed in place, are not seen: fuse=False then)."""
    key = (device, fold, batch_shape, _version(generator))
    cached = _COPIES.get(generator)
    if cached is not None and cached[0] == key:
        return cached[1]
    fused = _copy(generator, device, fold, batch_shape)
    _COPIES[generator] = (key, fused)
    return fused


def _copy(generator: nn.Module, device: torch.device, fold, batch_shape) -> nn.Module:
    fused = copy.deepcopy(generator).to(device).eval()
    packing = (
        device.type == "cpu"
        and batch_shape is not None
        and len(batch_shape) == 4
        and onednn.available()
    )
    if fold if fold is not None else device.type != "cpu" or packing:
        for block in fused.modules():
            norm = getattr(getattr(block, "adn", None), "N", None)
            if isinstance(block, Convolution) and isinstance(norm, _BatchNorm):
                transposed = isinstance(block.conv, nn.modules.conv._ConvTransposeNd)
                block.conv = fuse_conv_bn_eval(block.conv, norm, transpose=transposed)
                block.adn.N = nn.Identity()
    if device.type == "cpu":
        fused = fused.to(memory_format=memory_format(fused))
    if packing:
        try:
            return onednn.pack(fused, batch_shape)
        except RuntimeError:  # a oneDNN build without these kernels: an unpacked copy
            return _copy(generator, device, fold, None)
    return fused


def memory_format(generator: nn.Module) -> torch.memory_format:
    """channels_last for a 2D network (packed ones too), channels_last_3d for a 3D one."""
    conv = next((m for m in generator.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return (
        torch.channels_last_3d
        if conv is not None and conv.weight.ndim == 5
        else torch.channels_last
    )
