"""The texts inside a bioimage.io package: its README (inputs, outputs, the
normalization as numbers, the architecture, validation metrics, limitations) and its
conda environment."""

from __future__ import annotations

import math

import torch

from .._version import __version__
from ..engine.normalization import Normalization


def finite_metrics(metrics: dict[str, float]) -> dict:
    """The finite numbers of a metrics dict (a score can be NaN: SSIM on a small image)."""
    return {str(k): float(v) for k, v in metrics.items() if math.isfinite(v)}


def readme(model, name: str, description: str, shape: tuple[int, ...]) -> str:
    c = model.config
    space = "ZYX" if c.spatial_dims == 3 else "YX"
    pre_g, pre_o = Normalization.of(c, "source").gain_offset()
    post_g, post_o = Normalization.of(c, "target").gain_offset(inverse=True)
    rows = "\n".join(
        f"| input {i} | {lo:.6g} | {hi:.6g} | {g:.6g} | {o:.6g} |"
        for i, (lo, hi, g, o) in enumerate(zip(c.source_low, c.source_high, pre_g, pre_o))
    )
    rows += "\n" + "\n".join(
        f"| output {i} | {lo:.6g} | {hi:.6g} | {g:.6g} | {o:.6g} |"
        for i, (lo, hi, g, o) in enumerate(zip(c.target_low, c.target_high, post_g, post_o))
    )
    metrics = finite_metrics(model.history.final_metrics)
    validation = (
        "Metrics on the held-out validation patches at the end of training "
        "(target units):\n\n" + "\n".join(f"- {k}: {v:.4g}" for k, v in metrics.items())
        if metrics
        else "No validation metrics were recorded during training."
    )
    return f"""# {name}

{description}

pix2pix (Isola et al., CVPR 2017): a U-Net generator trained with a conditional PatchGAN
and an L1 loss, exported by napari-pix2pix {__version__}.

## Inputs and outputs

- Input `input`: axes batch, channel ({c.in_channels}), {space}; float32 in the source
  image's own units. Spatial sizes must be multiples of {c.multiple} (2**depth); the
  model was trained on {"x".join(map(str, c.patch_size))} patches. Images of other sizes
  (and stacks: {c.source_axes!r} in napari-pix2pix) are processed tile by tile / slice by
  slice, e.g. with `napari_pix2pix.predict` or bioimage.io tiling.
- Output `output`: axes batch, channel ({c.out_channels}), {space}, same size as the input;
  float32 in the target image's units.

## Normalization

The per-channel percentile ({c.percentiles[0]}, {c.percentiles[1]}) range of the training
data maps to [-1, 1] before the network (`scale_linear` pre-processing,
`x * gain + offset`); the network output in [-1, 1] (tanh) maps back (`scale_linear`
post-processing):

| tensor channel | low | high | gain | offset |
| --- | --- | --- | --- | --- |
{rows}

## Architecture

`napari_pix2pix.engine.networks.UNetGenerator` with depth {c.depth}, {c.base_channels} base
channels, {c.norm} normalization, dropout {c.dropout} (inactive at inference);
{model.history.steps_done} training steps, batch size {c.batch_size}, lambda_L1
{c.lambda_l1}, GAN loss {c.gan_mode!r}. The TorchScript weights run without
napari-pix2pix; the state-dict weights need `pip install napari-pix2pix`.

## Validation

{validation}

The test tensors (input {tuple(shape)}) were produced by this package with the
pre-/post-processing above; `bioimageio.core.test_model` reproduces them.

## Limitations

A generative model: predictions are plausible images, not measurements. Use only on data
like the training data (same modality, magnification, staining) and validate against
real targets before drawing conclusions.
"""


def environment() -> str:
    return (
        f"name: napari-pix2pix\nchannels:\n  - conda-forge\n  - nodefaults\n"
        f"dependencies:\n  - python>=3.11\n  - pip\n  - pip:\n"
        f"    - torch=={torch.__version__.split('+')[0]}\n"
        f"    - napari-pix2pix=={__version__}\n    - bioimageio.core\n"
    )
