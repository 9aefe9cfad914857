"""The pix2pix networks: a U-Net generator and a conditional PatchGAN discriminator,
both built from MONAI blocks so that 2D and 3D share one code path."""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from monai.networks.nets import PatchDiscriminator
from monai.networks.utils import normal_init
from torch import nn

from ..config import Pix2PixConfig

_NORM = {"batch": "BATCH", "instance": "INSTANCE"}


class UNetGenerator(nn.Module):
    """U-Net of the pix2pix paper ("U-Net-256" for depth 8).

    Each encoder level halves the size with a 4x4 stride-2 convolution (LeakyReLU 0.2),
    each decoder level doubles it with a 4x4 transposed convolution (ReLU) and receives the
    encoder features of the same level through a skip connection. Dropout (the paper's
    noise source) sits only in the innermost decoder levels; a tanh bounds the output to
    [-1, 1], the range targets are normalized to.

    Args:
        spatial_dims: 2 or 3.
        in_channels / out_channels: channels of the source / target image.
        depth: number of down-samplings; inputs must be multiples of ``2**depth``.
        base_channels: channels of the first level (ngf), doubled per level up to 8x.
        norm: "batch" or "instance".
        dropout: dropout probability of the inner decoder levels.

    Shapes: (N, in_channels, *S) -> (N, out_channels, *S), S multiples of 2**depth.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        depth: int = 8,
        base_channels: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        chans = [base_channels * min(2**i, 8) for i in range(depth)]
        norm_type = _NORM[norm]
        leaky = ("LEAKYRELU", {"negative_slope": 0.2})
        self.down = nn.ModuleList()
        for i in range(depth):
            outer_or_inner = i == 0 or i == depth - 1
            self.down.append(
                Convolution(
                    spatial_dims,
                    in_channels if i == 0 else chans[i - 1],
                    chans[i],
                    strides=2,
                    kernel_size=4,
                    padding=1,
                    act="RELU" if i == depth - 1 and depth > 1 else leaky,
                    norm=None if outer_or_inner else norm_type,
                    bias=outer_or_inner,
                )
            )
        n_dropout = min(3, depth - 2)
        self.up = nn.ModuleList()
        for i in range(depth):
            cin = chans[i] if i == depth - 1 else 2 * chans[i]
            if i == 0:
                block = nn.Sequential(
                    Convolution(
                        spatial_dims,
                        cin,
                        out_channels,
                        strides=2,
                        kernel_size=4,
                        padding=1,
                        output_padding=0,
                        is_transposed=True,
                        conv_only=True,
                        bias=True,
                    ),
                    nn.Tanh(),
                )
            else:
                drop = dropout if depth - 1 - n_dropout <= i <= depth - 2 else None
                block = Convolution(
                    spatial_dims,
                    cin,
                    chans[i - 1],
                    strides=2,
                    kernel_size=4,
                    padding=1,
                    output_padding=0,
                    is_transposed=True,
                    act="RELU",
                    norm=norm_type,
                    dropout=drop,
                    bias=False,
                )
            self.up.append(block)
        self.apply(normal_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(len(self.up) - 2, -1, -1):
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return x


class ConditionalDiscriminator(nn.Module):
    """PatchGAN that judges a (source, target) pair: MONAI's PatchDiscriminator on their
    channel concatenation. ``disc_layers`` 1/3/5 give the paper's 16/70/286 px receptive
    fields. Returns the patch logits (MONAI's forward returns all features; the logits
    are the last)."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        layers: int = 3,
        channels: int = 64,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.net = PatchDiscriminator(
            spatial_dims=spatial_dims,
            channels=channels,
            in_channels=in_channels + out_channels,
            out_channels=1,
            num_layers_d=layers,
            kernel_size=4,
            norm=_NORM[norm],
            padding=1,
        )
        self.net.apply(normal_init)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([source, target], dim=1))[-1]


def receptive_field(layers: int) -> int:
    """Receptive field (px) of a PatchGAN with this many layers (kernel 4)."""
    strides = [2] * layers + [1, 1]
    rf = 1
    for s in reversed(strides):
        rf = rf * s + (4 - s)
    return rf


def build_generator(config: Pix2PixConfig) -> UNetGenerator:
    return UNetGenerator(
        config.spatial_dims,
        config.in_channels,
        config.out_channels,
        depth=config.depth,
        base_channels=config.base_channels,
        norm=config.norm,
        dropout=config.dropout,
    )


def build_discriminator(config: Pix2PixConfig) -> ConditionalDiscriminator:
    return ConditionalDiscriminator(
        config.spatial_dims,
        config.in_channels,
        config.out_channels,
        layers=config.disc_layers,
        channels=config.disc_channels,
        norm=config.norm,
    )


def invalid_weights(state: dict) -> str:
    """What makes a state dict unusable ('' if nothing): NaN or infinite values, or
    negative variances (BatchNorm's running_var; Adam's steps and second moments)."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    never_negative = ("running_var", "exp_avg_sq", ".step")
    negative = [k for k, v in state.items() if k.endswith(never_negative) and bool((v < 0).any())]
    if bad:
        return f"NaN or infinite values in {bad[:3]}"
    return f"negative variances or steps in {negative[:3]}" if negative else ""
