"""Which network and crops a run trains with when the user does not say: "paper" is
the pix2pix paper's recipe (U-Net 256, ngf 64, 256 px crops), sized for a GPU and
large datasets; "auto" sizes the network for the data, the device and the time budget,
so that a run gets enough steps to learn. Measured on the shared phase -> DAPI field
(docs/quality.md): depth 5 generalised better than 7 or 8 there, and a plain U-Net of
width 32 with 128 px crops reached r 0.74 in 7 CPU minutes (about 12,000 steps), while
the paper's recipe got 1,500 steps in 20 minutes. Options the user gives always win."""

from __future__ import annotations

import math
import time

import torch

PAPER = {"depth": 8, "base_channels": 64, "disc_channels": 64, "patch_size": 256}
RECIPE_FIELDS = tuple(PAPER)  # what a preset chooses when the user does not
AUTO_PATCH = {2: 128, 3: 64}  # crop side: context enough for cells, small enough for speed
MIN_PATCH = 32
ENOUGH_STEPS = 3000  # real steps (a batch read too) a budget should give, else a narrower net
WIDTHS = (64, 32, 16)  # tried widest first on a GPU, from 32 on a CPU


def depth_for(patch: int) -> int:
    """The U-Net depth for a crop side: down to a 4 px bottleneck (128 -> 5), 3..8."""
    return int(min(8, max(3, round(math.log2(patch)) - 2)))


def preset_options(preset: str, given: dict, spatial_dims: int) -> dict:
    """The fields a preset sets before the data is seen (``given`` ones are left alone):
    a given patch size gets a depth that divides it, a given depth a patch it divides."""
    if preset == "paper":
        chosen = dict(PAPER)
    else:
        side = AUTO_PATCH.get(spatial_dims, 128)
        chosen = {"patch_size": side, "depth": depth_for(side), "base_channels": 32}
        chosen["disc_channels"] = 32  # ndf = ngf, as in the paper
    if "patch_size" in given and "depth" not in given:
        side = given_side(given["patch_size"])
        divides = (side & -side).bit_length() - 1 if side > 0 else 1
        fits = [chosen["depth"], divides] + ([depth_for(side)] if preset == "auto" else [])
        chosen["depth"] = max(1, min(fits))
    if "depth" in given and "patch_size" not in given:
        depth = given["depth"]
        if isinstance(depth, int) and 0 < depth <= 16:
            chosen["patch_size"] = max(chosen["patch_size"], 2**depth)
    return {k: v for k, v in chosen.items() if k not in given}


def given_side(patch) -> int:
    try:
        return int(min(patch)) if isinstance(patch, (tuple, list)) else int(patch)
    except (TypeError, ValueError):
        return 0  # the config's own check says what is wrong


def fit_patch_to_data(min_side: int, spatial_dims: int) -> int:
    """The auto crop side for images whose smallest side is ``min_side``."""
    side = AUTO_PATCH.get(spatial_dims, 128)
    while side > MIN_PATCH and side > min_side:
        side //= 2
    return side


def pick_width(
    sized, device: torch.device, seconds: float, make_trainer, batch_seconds: float = 0.0
) -> tuple[int, list[float], str]:
    """The widest generator that still gets ENOUGH_STEPS within ``seconds``, timed on
    this device with a few real steps on random crops plus ``batch_seconds`` (reading
    and augmenting a batch, the same for every width); (width, its timed seconds per
    step, sorted, why). ``sized(width)``: the config with that width (and the
    discriminator's, where free)."""
    widths = [w for w in WIDTHS if device.type != "cpu" or w <= 32]
    for width in widths:
        config = sized(width)
        times = [t + batch_seconds for t in step_times(make_trainer(config), config)]
        step = median(times)
        steps = seconds / step
        if steps >= ENOUGH_STEPS or width == widths[-1]:
            why = f"width {width}: {step * 1000:.0f} ms/step, about {steps:,.0f} steps"
            return width, times, why
    raise AssertionError("unreachable")


WARMUP_STEPS = 2  # the first steps make the kernels and pools the later ones reuse


def step_times(trainer, config, repeats: int = 5) -> list[float]:
    """The durations of ``repeats`` training steps on random crops, after WARMUP_STEPS
    untimed ones, sorted (one warm-up step left estimates 2-6x too slow on a CPU)."""
    shape = (config.batch_size, config.in_channels, *config.patch_size)
    with torch.random.fork_rng(devices=[]):
        src = torch.randn(shape, device=trainer.device)
        tgt = torch.randn((shape[0], config.out_channels, *shape[2:]), device=trainer.device)
        times = []
        for _ in range(WARMUP_STEPS + repeats):
            began = time.perf_counter()
            trainer.step(src, tgt, 1, 0.0)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)
            times.append(time.perf_counter() - began)
    return sorted(times[WARMUP_STEPS:])


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]
