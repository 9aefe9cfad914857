"""The one training loop. ``train_iter`` is a generator of progress events so that a
script, the CLI and the napari widget (in a worker thread) all drive the same code and
can stop it between any two steps; ``train`` just runs it to the end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .config import Pix2PixConfig
from .data import PairedPatchSampler, load_pairs, normalize, percentile_range, split_train_val
from .device import amp_dtype, autocast, free_memory, is_out_of_memory, resolve_device
from .errors import InputError, TrainingError
from .metrics import image_metrics
from .model import Pix2PixModel
from .networks import build_discriminator, build_generator
from .prediction import TiledPredictor


@dataclass(kw_only=True)
class TrainingEvent:
    """Base of what ``train_iter`` yields; ``model`` is the model being trained."""

    step: int
    total: int
    model: Pix2PixModel = field(repr=False)


@dataclass(kw_only=True)
class StepEvent(TrainingEvent):
    """After every optimisation step: losses (g_gan, g_l1, d_real, d_fake, ...)."""

    losses: dict[str, float]
    lr: float
    elapsed: float


@dataclass(kw_only=True)
class ValidationEvent(TrainingEvent):
    """After each validation: metrics on the held-out part and a small preview (first
    channel, target units) of the prediction, the target and the source."""

    metrics: dict[str, float]
    preview: np.ndarray = field(repr=False)
    preview_target: np.ndarray = field(repr=False)
    preview_source: np.ndarray = field(repr=False)


@dataclass(kw_only=True)
class WarningEvent(TrainingEvent):
    """Something the user should know about the run (it goes on)."""

    message: str


@dataclass(kw_only=True)
class FinishedEvent(TrainingEvent):
    """Last event: training reached ``total`` steps; ``model`` is final."""


COLLAPSE_RATIO = 0.25  # prediction std below this fraction of the target's: collapse


def gan_loss(logits: torch.Tensor, real: bool, mode: str, for_discriminator: bool) -> torch.Tensor:
    """Adversarial loss on PatchGAN logits, computed in float32 (autocast-safe).

    Not MONAI's PatchAdversarialLoss: it applies a sigmoid before BCELoss, which autocast
    refuses in fp16, and passes hinge logits through a tanh."""
    logits = logits.float()
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))
    if mode == "lsgan":
        return F.mse_loss(logits, torch.full_like(logits, float(real)))
    if mode == "hinge":
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()
    raise ValueError(mode)


def linear_decay(total: int):
    """Constant learning rate for the first half of the steps, then linear decay to 0."""
    half = total // 2

    def factor(step: int) -> float:
        if step < half:
            return 1.0
        return max(0.0, 1.0 - (step - half) / max(1, total - half))

    return factor


def _set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _preview(array: np.ndarray, size: int = 256) -> np.ndarray:
    """Centre crop (first channel; middle slice for 3D) of a (C, *spatial) array."""
    x = array[0]
    if x.ndim == 3:
        x = x[x.shape[0] // 2]
    starts = [max(0, (n - size) // 2) for n in x.shape]
    return np.ascontiguousarray(x[starts[0]: starts[0] + size, starts[1]: starts[1] + size])


def train_iter(source, target, axes: str | None = "YX", target_axes: str | None = None, *,
               steps: int | None = None, patch_size=256, batch_size: int = 4, depth: int = 8,
               base_channels: int = 64, lambda_l1: float = 100.0, gan_mode: str = "vanilla",
               val_fraction: float = 0.1, device="auto", seed: int | None = 0,
               gan_warmup: float = 0.1, foreground_crops: float = 0.5, spatial_dims: int = 2, disc_layers: int = 3, disc_channels: int = 64,
               norm: str = "batch", dropout: float = 0.5, lr: float = 2e-4, amp: str = "auto",
               percentiles=(0.5, 99.5), val_every: int | None = None,
               checkpoint_dir=None, checkpoint_every: int | None = None,
               resume=None) -> Iterator[TrainingEvent]:
    """Train a pix2pix model, yielding an event after every step and validation.

    Args mirror ``train``. The generator stops cleanly when the consumer stops
    iterating (closing it); ``event.model`` is then the model trained so far, and with
    ``checkpoint_dir`` a checkpoint of that state is written so ``resume`` can go on.
    """
    if resume is not None:
        ckpt = load_checkpoint(resume)
        config = ckpt["config"].replace(steps=max(steps or 0, ckpt["config"].steps))
        checkpoint_dir = checkpoint_dir if checkpoint_dir is not None else ckpt["path"].parent
    else:
        ckpt = None
        config = Pix2PixConfig(
            source_axes=axes or "YX", target_axes=target_axes or axes or "YX",
            spatial_dims=spatial_dims, patch_size=patch_size, depth=depth,
            base_channels=base_channels, norm=norm, dropout=dropout, disc_layers=disc_layers,
            disc_channels=disc_channels, gan_mode=gan_mode, lambda_l1=lambda_l1,
            gan_warmup=gan_warmup, foreground_crops=foreground_crops,
            batch_size=batch_size, lr=lr, val_fraction=val_fraction, seed=seed, amp=amp,
            percentiles=percentiles, **({} if steps is None else {"steps": steps}))
    for name, value in (("val_every", val_every), ("checkpoint_every", checkpoint_every)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise InputError(f"{name} must be a positive integer, got {value!r}.")
    dev = resolve_device(device)
    rank, world, dev = distributed.setup(dev)
    dtype = amp_dtype(dev, config.amp)

    pairs, s_axes, t_axes = load_pairs(source, target, axes if resume is None else config.source_axes,
                                       target_axes if resume is None else config.target_axes,
                                       config.spatial_dims)
    channels = (pairs[0][0].shape[0], pairs[0][1].shape[0])
    if ckpt is None:
        config = config.replace(source_axes=s_axes, target_axes=t_axes, in_channels=channels[0],
                                out_channels=channels[1])
    elif channels != (config.in_channels, config.out_channels):
        raise InputError(f"the images have {channels[0]} -> {channels[1]} channels but the "
                         f"checkpoint's model has {config.in_channels} -> {config.out_channels}.")
    split = split_train_val(pairs, config.val_fraction)
    if not config.normalized:
        s_lo, s_hi = percentile_range([s for s, _ in split.train], config.percentiles, "source")
        t_lo, t_hi = percentile_range([t for _, t in split.train], config.percentiles, "target")
        config = config.replace(source_low=s_lo, source_high=s_hi, target_low=t_lo, target_high=t_hi)
    train_pairs = [(normalize(s, config.source_low, config.source_high),
                    np.clip(normalize(t, config.target_low, config.target_high), -1.0, 1.0))
                   for s, t in split.train]

    if config.seed is not None:
        torch.manual_seed(config.seed)
    # every rank starts from the same weights but draws its own crops
    sampler_seed = None if config.seed is None else config.seed + 1000 * rank
    sampler = PairedPatchSampler(train_pairs, config.patch_size, seed=sampler_seed,
                                 foreground=config.foreground_crops)
    generator = build_generator(config).to(dev)
    use_gan = config.gan_mode != "none"
    discriminator = build_discriminator(config).to(dev) if use_gan else None
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=config.betas) if use_gan else None
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    history: dict = {"steps_done": 0, "losses": {}, "validation": [], "split": split.description,
                     "train_seconds": 0.0, "device": str(dev)}
    start = 0
    if ckpt is not None:
        generator.load_state_dict(ckpt["generator"])
        if use_gan:
            discriminator.load_state_dict(ckpt["discriminator"])
            opt_d.load_state_dict(ckpt["opt_d"])
        opt_g.load_state_dict(ckpt["opt_g"])
        if ckpt["scaler"] and scaler.is_enabled():
            scaler.load_state_dict(ckpt["scaler"])
        if rank == 0:  # other ranks keep their own crop stream
            sampler.set_state(ckpt["sampler"])
        torch.set_rng_state(ckpt["rng_torch"])
        if ckpt["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng_cuda"])
        history = ckpt["history"]
        start = ckpt["step"]
    model = Pix2PixModel(config, generator, history)
    if world > 1:
        net_g = distributed.wrap(generator, dev)
        net_d = distributed.wrap(discriminator, dev) if use_gan else None
    else:
        net_g, net_d = generator, discriminator
    total = config.steps
    schedule = linear_decay(total)
    val_every = val_every or max(1, total // 10)
    log_every = max(1, total // 1000)
    predictor = TiledPredictor(generator, config.source_low, config.source_high, config.target_low,
                               config.target_high, config.multiple, config.patch_size, 0.25,
                               config.batch_size, dev, dtype)
    window: dict[str, list[float]] = {}

    def checkpoint(step: int) -> None:
        if checkpoint_dir is not None and rank == 0:
            save_checkpoint(checkpoint_dir, config=config, step=step, history=history,
                            generator=generator, discriminator=discriminator, opt_g=opt_g,
                            opt_d=opt_d, scaler=scaler, sampler_state=sampler.state())

    def validate(step: int) -> ValidationEvent | None:
        if not split.val or rank != 0:
            return None
        preds, targets = [], []
        for src, tgt in split.val:
            preds.append(predictor.predict_sample(src))
            targets.append(tgt.astype(np.float32))
        scores = [image_metrics(p[None], t[None], config.target_low, config.target_high)
                  for p, t in zip(preds, targets)]
        metrics = {k: _finite_mean([s[k] for s in scores]) for k in scores[0]}
        # how much of the target's variation the prediction reproduces; near 0 means the
        # generator has collapsed to a flat output (a GAN failure on sparse targets)
        metrics["std_ratio"] = float(np.mean([p.std() for p in preds]) /
                                     max(float(np.mean([t.std() for t in targets])), 1e-12))
        history["validation"].append({"step": step, **metrics})
        history["final_metrics"] = metrics
        return ValidationEvent(step=step, total=total, model=model, metrics=metrics,
                               preview=_preview(preds[0]), preview_target=_preview(targets[0]),
                               preview_source=_preview(split.val[0][0].astype(np.float32)))

    notes = []
    small = [s.shape[1:] for s, _ in split.train
             if any(n < p for n, p in zip(s.shape[1:], config.patch_size))]
    if small:
        notes.append(f"training image(s) of size {small[0]} are smaller than patch_size "
                     f"{config.patch_size} and were reflect-padded; a smaller patch_size (with a "
                     "smaller depth) would use the data better.")
    if split.val and min(split.val[0][0].shape[1:]) < 11:
        notes.append(f"the validation part is only {min(split.val[0][0].shape[1:])} px wide, too "
                     "small for SSIM (reported as NaN); use a larger val_fraction or more images.")
    for note in notes:
        yield WarningEvent(step=start, total=config.steps, model=model, message=note)

    started = time.perf_counter()
    base_seconds = history.get("train_seconds", 0.0)
    step = start
    finished = False
    collapse_said = False
    try:
        generator.train()
        for step in range(start + 1, total + 1):
            lr_now = config.lr * schedule(step - 1)
            _set_lr(opt_g, lr_now)
            src, tgt = (t.to(dev, non_blocking=True) for t in sampler.batch(config.batch_size))
            try:
                losses = _train_step(net_g, net_d, opt_g, opt_d, scaler, src, tgt, config,
                                     dev, dtype, lr_now, adversarial_weight(step, total, config))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                del src, tgt
                raise TrainingError(_out_of_memory_message(net_g, net_d, config, dev, dtype, step)
                                    + (f" The last checkpoint in {checkpoint_dir} is intact."
                                       if checkpoint_dir else "")) from exc
            bad = [k for k, v in losses.items() if not np.isfinite(v)]
            if bad:
                raise TrainingError(
                    f"training diverged at step {step}: the {', '.join(bad)} loss became NaN/inf. "
                    "Check the inputs for extreme values, or lower the learning rate (lr=...)."
                    + (f" The last checkpoint in {checkpoint_dir} is intact." if checkpoint_dir else ""))
            history["steps_done"] = step
            history["train_seconds"] = base_seconds + time.perf_counter() - started
            for k, v in losses.items():
                window.setdefault(k, []).append(v)
            if step % log_every == 0 or step == total:
                history["losses"].setdefault("step", []).append(step)
                for k, vs in window.items():
                    history["losses"].setdefault(k, []).append(float(np.mean(vs)))
                window.clear()
            yield StepEvent(step=step, total=total, model=model, losses=losses, lr=lr_now,
                            elapsed=time.perf_counter() - started)
            if step % val_every == 0 or step == total or (
                    checkpoint_every and step % checkpoint_every == 0):
                distributed.sync_buffers(generator)
            if step % val_every == 0 or step == total:
                event = validate(step)
                if event is not None:
                    yield event
                    ratio = event.metrics["std_ratio"]
                    if ratio < COLLAPSE_RATIO and step >= max(total // 4, 50) and not collapse_said:
                        collapse_said = True
                        advice = ("train longer, or check that source and target are aligned"
                                  if config.gan_mode == "none" else
                                  "try a longer gan_warmup, a larger lambda_l1 or gan_mode='none' "
                                  "(L1 only), and check that source and target are aligned")
                        yield WarningEvent(step=step, total=total, model=model, message=(
                            f"the predictions are nearly flat at step {step}: their variation "
                            f"is {ratio:.0%} of the target's (a collapsed generator); {advice}."))
            if checkpoint_every and step % checkpoint_every == 0 and step < total:
                checkpoint(step)
        checkpoint(total)
        finished = True
        generator.eval()
        yield FinishedEvent(step=total, total=total, model=model)
    except GeneratorExit:
        # The consumer stopped early: keep what was trained, resumable from a checkpoint.
        if not finished and step > start and history["steps_done"] == step:
            checkpoint(step)
        raise
    finally:
        generator.eval()


def _out_of_memory_message(net_g, net_d, config: Pix2PixConfig, dev, dtype, step: int) -> str:
    """Say which smaller batch (then patch) fits, found by trying one forward and
    backward pass of each on this device, so the user's rerun does not fail again."""
    for net in (net_g, net_d):
        if net is not None:
            net.zero_grad(set_to_none=True)
    free_memory(dev)
    said = (f"out of memory on {dev} at step {step} with batch_size={config.batch_size} and "
            f"patch_size={config.patch_size}.")
    candidates = []
    batch = config.batch_size // 2
    while batch >= 1:
        candidates.append((batch, config.patch_size))
        batch //= 2
    patch = config.patch_size
    while True:
        smaller = tuple(max(config.multiple, p // 2 // config.multiple * config.multiple) for p in patch)
        if smaller == patch:
            break
        try:
            config.replace(patch_size=smaller)
        except InputError:  # too small for the discriminator
            break
        patch = smaller
        candidates.append((1, patch))
    for batch, patch in candidates:
        try:
            src = torch.zeros((batch, config.in_channels, *patch), device=dev)
            with autocast(dev, dtype):
                fake = net_g(src)
                loss = fake.float().mean()
                if net_d is not None:
                    loss = loss + net_d(src, fake).float().mean()
            loss.backward()
            return (f"{said} batch_size={batch} with patch_size={patch} fits on this device: "
                    "train again with those values.")
        except Exception as exc:  # noqa: BLE001 - only out-of-memory means "try smaller"
            if not is_out_of_memory(exc):
                raise
        finally:
            for net in (net_g, net_d):
                if net is not None:
                    net.zero_grad(set_to_none=True)
            free_memory(dev)
    fix = "" if dev.type == "cpu" else "train on the CPU (device='cpu') or "
    return (f"{said} Even batch_size=1 at the smallest patch size does not fit: {fix}choose a "
            "smaller network (base_channels, depth).")


def adversarial_weight(step: int, total: int, config: Pix2PixConfig) -> float:
    """0 during the L1 warm-up (``gan_warmup`` of the steps), then a linear ramp to 1
    over as many steps."""
    warm = config.gan_warmup * total
    if warm <= 0:
        return 1.0
    return float(min(1.0, max(0.0, (step - warm) / warm)))


def _train_step(generator, discriminator, opt_g, opt_d, scaler, src, tgt, config, dev, dtype,
                lr: float, gan_weight: float = 1.0) -> dict[str, float]:
    """One pix2pix update: D on (src, real) vs (src, fake), then G on cGAN + lambda * L1.

    The two halves of the D loss are back-propagated separately (the same gradient as
    their sum) so that, under DistributedDataParallel, D sees real and fake batches in
    separate forward passes (separate BatchNorm statistics, as in the paper) and its
    gradients are averaged once. G's adversarial term goes through the unwrapped D, whose
    weights it does not update."""
    losses = {}
    with autocast(dev, dtype):
        fake = generator(src)
    if discriminator is not None:
        _set_lr(opt_d, lr)
        discriminator.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        no_sync = discriminator.no_sync() if hasattr(discriminator, "no_sync") else nullcontext()
        with no_sync:
            with autocast(dev, dtype):
                d_fake = gan_loss(discriminator(src, fake.detach()), False, config.gan_mode, True)
            scaler.scale(0.5 * d_fake).backward()
        with autocast(dev, dtype):
            d_real = gan_loss(discriminator(src, tgt), True, config.gan_mode, True)
        scaler.scale(0.5 * d_real).backward()
        scaler.step(opt_d)
        d_plain = distributed.unwrap(discriminator)
        d_plain.requires_grad_(False)
        with autocast(dev, dtype):
            g_gan = gan_loss(d_plain(src, fake), True, config.gan_mode, False)
        losses.update(d_real=d_real.item(), d_fake=d_fake.item(), g_gan=g_gan.item())
    else:
        g_gan = torch.zeros((), device=dev)
    g_l1 = F.l1_loss(fake.float(), tgt)
    g_loss = gan_weight * g_gan + config.lambda_l1 * g_l1
    opt_g.zero_grad(set_to_none=True)
    scaler.scale(g_loss).backward()
    scaler.step(opt_g)
    scaler.update()
    losses.update(g_l1=g_l1.item(), g_total=g_loss.item())
    return losses


def train(source, target, axes: str | None = "YX", target_axes: str | None = None, *,
          steps: int | None = None, patch_size=256, batch_size: int = 4, depth: int = 8,
          base_channels: int = 64, lambda_l1: float = 100.0, gan_mode: str = "vanilla",
          val_fraction: float = 0.1, device="auto", seed: int | None = 0,
          progress=None, **options) -> Pix2PixModel:
    """Train pix2pix on aligned (source, target) pairs and return the model.

    Args:
        source, target: arrays (uint8/uint16/int16/float...) or TIFF paths, or lists of
            them for several pairs.
        axes / target_axes: dimension letters (T, Z, C, Y, X), e.g. "YX", "CYX", "ZYX";
            target_axes defaults to axes (or "YX" for a 2D target).
        steps: training length (default 2000; when resuming, the checkpoint's unless
            larger); patch_size, batch_size: crop size, crops per step.
        depth, base_channels: U-Net down-samplings (patch sides must be multiples of
            2**depth) and first-level width.
        lambda_l1, gan_mode: loss = cGAN + lambda_l1 * L1; gan_mode "vanilla", "lsgan",
            "hinge", or "none" (L1 only).
        val_fraction: share held out for validation (whole slices, or the right part).
        device: "auto" (cuda, mps, cpu), "cuda", "mps" or "cpu".
        seed: makes a CPU run repeatable.
        progress: optional callable receiving every event.
        **options: gan_warmup (share of steps with L1 only before the adversarial term
            ramps in, default 0.1), foreground_crops (share of crops centred on target
            foreground, default 0.5), spatial_dims, disc_layers, disc_channels, norm,
            dropout, lr, amp, percentiles, val_every, checkpoint_dir, checkpoint_every,
            resume.
    """
    model = None
    for event in train_iter(source, target, axes, target_axes, steps=steps, patch_size=patch_size,
                            batch_size=batch_size, depth=depth, base_channels=base_channels,
                            lambda_l1=lambda_l1, gan_mode=gan_mode, val_fraction=val_fraction,
                            device=device, seed=seed, **options):
        if progress is not None:
            progress(event)
        model = event.model
    return model
