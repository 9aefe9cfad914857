"""The 2D generator's convolutions as prediction runs them on the CPU: oneDNN kernels whose
weights are laid out once for the tile shape, with the activation after them fused in.

This is what torch.compile's freezing pass does for convolutions, without its 2-17 s of
compiling on each new model: eager oneDNN reorders every weight at every call, which for
the paper's network (54 M weights) costs about a tenth of a forward. The last,
one-channel transposed convolution, 2.6-2.8x slower in oneDNN than the same work as a
convolution, becomes one 2x2 convolution giving the four output phases, interleaved.
benchmarks/fusion_steps.py measures each step; tests/engine/test_fusion.py checks that
the outputs are unchanged."""

from __future__ import annotations

import itertools

import torch
from monai.networks.blocks import Convolution
from torch import nn

_OPS = torch.ops.mkldnn
# activation -> (oneDNN post-op, its arguments)
_POST_OPS = {
    nn.ReLU: lambda a: ("relu", []),
    nn.LeakyReLU: lambda a: ("leaky_relu", [a.negative_slope]),
    nn.Tanh: lambda a: ("tanh", []),
}
# the kernel taps of a 4-wide, stride-2, padding-1 transposed convolution that reach
# output phase 0 and 1 from the input window (x[i - 1 + phase], x[i + phase])
_TAPS = ((3, 1), (2, 0))


def available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(_OPS, "_convolution_pointwise")


class PackedConv(nn.Module):
    """A convolution or transposed convolution with prepacked weights and a fused
    activation; it runs on any input size (the packing is only fastest for one)."""

    def __init__(self, conv: nn.Module, input_size: list[int], act: nn.Module | None = None):
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        geometry = [list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups]
        if self.transposed:
            geometry.insert(1, list(conv.output_padding))
            reorder = _OPS._reorder_convolution_transpose_weight
        else:
            reorder = _OPS._reorder_convolution_weight
        self.geometry = geometry
        self.weight = reorder(conv.weight.detach(), *geometry, input_size)
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.post_op = ("none", []) if act is None else _POST_OPS[type(act)](act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = (
            _OPS._convolution_transpose_pointwise
            if self.transposed
            else _OPS._convolution_pointwise
        )
        return op(x, self.weight, self.bias, *self.geometry, *self.post_op, "")


class PhaseTransposedConv(nn.Module):
    """A 4x4 stride-2 transposed convolution as one 2x2 convolution with an output per
    phase (the same multiply-adds), the phases then interleaved: far faster in oneDNN
    when the layer has few output channels."""

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        weight = conv.weight.detach()  # (in, out, 4, 4)
        self.out_channels = weight.shape[1]
        self.phases = list(itertools.product((0, 1), repeat=2))
        kernels = [
            weight[:, :, list(_TAPS[a])][:, :, :, list(_TAPS[b])].transpose(0, 1)
            for a, b in self.phases
        ]
        self.conv = nn.Conv2d(weight.shape[0], 4 * self.out_channels, 2, padding=1, bias=False)
        self.conv.weight.data = torch.cat(kernels).contiguous(memory_format=torch.channels_last)
        self.bias = None if conv.bias is None else conv.bias.detach().view(1, -1, 1, 1)

    @staticmethod
    def applies(conv: nn.Module) -> bool:
        return (
            type(conv) is nn.ConvTranspose2d
            and conv.out_channels <= 4
            and conv.kernel_size == (4, 4)
            and conv.stride == (2, 2)
            and conv.padding == (1, 1)
            and conv.output_padding == (0, 0)
            and conv.dilation == (1, 1)
            and conv.groups == 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (n, 4 * out, h + 1, w + 1): phase (a, b) of y[2i + a, 2j + b] sits at (i + a, j + b)
        z = self.conv(x)
        n, _, h, w = x.shape
        c = self.out_channels
        y = torch.empty(
            (n, c, 2 * h, 2 * w), dtype=z.dtype, device=z.device, memory_format=torch.channels_last
        )
        for g, (a, b) in enumerate(self.phases):
            y[:, :, a::2, b::2] = z[:, g * c : (g + 1) * c, a : a + h, b : b + w]
        return y if self.bias is None else y.add_(self.bias)


def pack(generator: nn.Module, sample_shape: tuple[int, ...], phases: bool = True) -> nn.Module:
    """``generator`` (a 2D copy in eval mode, BatchNorm folded) with every convolution
    packed for inputs of ``sample_shape`` (batch, channels, height, width); ``phases``:
    few-channel transposed convolutions as PhaseTransposedConv."""
    for block in list(generator.modules()):
        if phases and isinstance(block, Convolution) and PhaseTransposedConv.applies(block.conv):
            block.conv = PhaseTransposedConv(block.conv)
    sizes = _input_sizes(generator, sample_shape)
    for block in list(generator.modules()):
        if isinstance(block, nn.Sequential) and isinstance(block[0], Convolution):
            # the outermost decoder level: a bare convolution, then tanh
            if _packable(block[0].conv) and isinstance(block[-1], nn.Tanh):
                block[0].conv = PackedConv(block[0].conv, sizes[block[0].conv], block[-1])
                block[-1] = nn.Identity()
        elif isinstance(block, Convolution) and _packable(block.conv):
            act = _fusable_activation(block)
            block.conv = PackedConv(block.conv, sizes[block.conv], act)
            if act is not None:
                block.adn.A = nn.Identity()
        elif isinstance(block, PhaseTransposedConv):
            block.conv = PackedConv(block.conv, sizes[block.conv])
    return generator


def _packable(conv: nn.Module) -> bool:
    return type(conv) in (nn.Conv2d, nn.ConvTranspose2d) and conv.padding_mode == "zeros"


def _fusable_activation(block: Convolution) -> nn.Module | None:
    """The block's activation when nothing but dropout (off in eval mode) separates it
    from the convolution."""
    adn = getattr(block, "adn", None)
    act = getattr(adn, "A", None)
    norm = getattr(adn, "N", None)
    if type(act) not in _POST_OPS or not isinstance(norm, (nn.Identity, type(None))):
        return None
    return act


def _input_sizes(generator: nn.Module, sample_shape: tuple[int, ...]) -> dict:
    """Each convolution's input shape for a batch of ``sample_shape``, from a forward on
    the meta device: shapes only, so a huge tile costs neither memory nor time."""
    sizes: dict[nn.Module, list[int]] = {}

    def record(module, args):
        sizes[module] = list(args[0].shape)

    convs = [m for m in generator.modules() if type(m) in (nn.Conv2d, nn.ConvTranspose2d)]
    hooks = [m.register_forward_pre_hook(record) for m in convs]
    tensors = {**dict(generator.named_parameters()), **dict(generator.named_buffers())}
    try:
        with torch.inference_mode():
            torch.func.functional_call(
                generator,
                {name: t.to("meta") for name, t in tensors.items()},
                (torch.empty(sample_shape, device="meta"),),
            )
    finally:
        for hook in hooks:
            hook.remove()
    return sizes
