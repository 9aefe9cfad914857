"""One pix2pix update at a time: the two networks, their optimizers, the mixed-precision
scaler and the schedules, with the state that makes a run resumable."""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from ..config import Pix2PixConfig
from ..errors import InputError, TrainingError
from . import distributed
from .device import autocast
from .loss_terms import LOSS_NAMES
from .losses import gan_loss
from .memory import fallbacks, free_memory, gib, is_out_of_memory, unet_bytes
from .networks import build_discriminator
from .schedule import adversarial_weight, lr_factor


class Trainer:
    """Generator, discriminator, both Adam optimizers and the AMP scaler of one run.

    ``step`` does one update at the schedule's learning rate and adversarial weight;
    under torchrun (``world`` > 1) both networks are wrapped in DistributedDataParallel.
    """

    def __init__(
        self,
        config: Pix2PixConfig,
        generator: torch.nn.Module,
        device: torch.device,
        dtype: torch.dtype | None,
        world: int = 1,
    ) -> None:
        self.config, self.device, self.dtype, self.world = config, device, dtype, world
        if device.type == "cuda":  # every crop has one shape: let cuDNN pick its kernels once
            torch.backends.cudnn.benchmark = True
        # channels-last 2D convolutions are the tensor cores' layout under mixed precision
        fast = device.type == "cuda" and dtype is not None and config.spatial_dims == 2
        self.memory_format = torch.channels_last if fast else torch.contiguous_format
        self.generator = generator.to(device, memory_format=self.memory_format)
        use_gan = config.gan_mode != "none"
        self.discriminator = (
            build_discriminator(config).to(device, memory_format=self.memory_format)
            if use_gan
            else None
        )
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=config.betas)
        self.opt_d = (
            torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=config.betas)
            if use_gan
            else None
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        wrap = (lambda m: distributed.wrap(m, device)) if world > 1 else (lambda m: m)
        self.net_g = wrap(self.generator)
        self.net_d = wrap(self.discriminator) if use_gan else None

    def lr(self, progress: float) -> float:
        return self.config.lr * lr_factor(progress)

    def step(
        self, src: torch.Tensor, tgt: torch.Tensor, step: int, progress: float
    ) -> dict[str, torch.Tensor]:
        """One update at the schedule's values for ``progress`` (the fraction of the run
        done). The losses stay 0-d tensors on the device: reading them waits for the
        device, so the loop reads them once per logged step (loss_log). Out of memory,
        the error names a batch and patch size that fit."""
        failure = None
        try:
            return self._update(
                src, tgt, self.lr(progress), adversarial_weight(progress, self.config.gan_warmup)
            )
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            failure = exc
        # out of the handler: the traceback no longer holds the failed step's tensors
        del src, tgt
        raise TrainingError(self._what_fits(step)) from failure

    def _update(self, src, tgt, lr: float, gan_weight: float) -> dict[str, torch.Tensor]:
        """D on (src, real) vs (src, fake), then G on cGAN + lambda * L1.

        The two halves of the D loss are back-propagated separately (the same gradient as
        their sum) so that, under DistributedDataParallel, D sees real and fake batches in
        separate forward passes (separate BatchNorm statistics, as in the paper) and its
        gradients are averaged once. G's adversarial term goes through the unwrapped D,
        whose weights it does not update."""
        config, dev, dtype, scaler = self.config, self.device, self.dtype, self.scaler
        src, tgt = (t.contiguous(memory_format=self.memory_format) for t in (src, tgt))
        d, losses = self.net_d, {}
        for opt in (self.opt_g, self.opt_d):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr
        with autocast(dev, dtype):
            fake = self.net_g(src)
        if d is not None:
            d.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            with d.no_sync() if hasattr(d, "no_sync") else nullcontext():
                with autocast(dev, dtype):
                    d_fake = gan_loss(d(src, fake.detach()), False, config.gan_mode, True)
                scaler.scale(0.5 * d_fake).backward()
            with autocast(dev, dtype):
                d_real = gan_loss(d(src, tgt), True, config.gan_mode, True)
            scaler.scale(0.5 * d_real).backward()
            scaler.step(self.opt_d)
            self.discriminator.requires_grad_(False)
            with autocast(dev, dtype):
                g_gan = gan_loss(self.discriminator(src, fake), True, config.gan_mode, False)
            losses.update(d_real=d_real, d_fake=d_fake, g_gan=g_gan)
        else:
            g_gan = torch.zeros((), device=dev)
        g_l1 = F.l1_loss(fake.float(), tgt)
        g_loss = gan_weight * g_gan + config.lambda_l1 * g_l1
        self.opt_g.zero_grad(set_to_none=True)
        scaler.scale(g_loss).backward()
        scaler.step(self.opt_g)
        scaler.update()
        losses.update(g_l1=g_l1, g_total=g_loss)
        # the terms declared in loss_terms.py, in their order (a test checks that none
        # computed here is left out)
        return {k: losses[k].detach().float() for k in LOSS_NAMES if k in losses}

    def _what_fits(self, step: int) -> str:
        """Say which smaller batch (then patch) fits, found by trying one forward and
        backward pass of each on this device, so the user's rerun does not fail again."""
        config, dev = self.config, self.device
        said = (
            f"out of memory on {dev} at step {step} with batch_size={config.batch_size} and "
            f"patch_size={config.patch_size}."
        )
        if self.world > 1:  # probing would run one rank's collectives alone: a hang
            return (
                f"{said} Train again with a smaller batch_size or patch_size (under torchrun "
                "the sizes that fit are not probed)."
            )
        disc_min = 3 * 2**config.disc_layers if config.gan_mode != "none" else 1
        min_side = config.multiple * math.ceil(disc_min / config.multiple)
        for batch, patch in fallbacks(
            config.batch_size, config.patch_size, config.multiple, min_side
        ):
            if self._fits(batch, patch):
                return (
                    f"{said} batch_size={batch} with patch_size={patch} fits on this device: "
                    "train again with those values."
                )
        fix = "" if dev.type == "cpu" else "train on the CPU (device='cpu') or "
        return (
            f"{said} Even batch_size=1 at the smallest patch size does not fit: {fix}choose a "
            "smaller network (base_channels, depth)."
        )

    def _fits(self, batch: int, patch: tuple[int, ...]) -> bool:
        """One forward and backward pass of the networks themselves (not DDP's wrappers),
        their BatchNorm statistics put back afterwards (zeros must not feed them)."""
        nets = [n for n in (self.generator, self.discriminator) if n is not None]
        kept = [{k: v.clone() for k, v in net.named_buffers()} for net in nets]
        try:
            for net in nets:
                net.zero_grad(set_to_none=True)
            free_memory(self.device)
            src = torch.zeros((batch, self.config.in_channels, *patch), device=self.device)
            with autocast(self.device, self.dtype):
                fake = self.generator(src)
                loss = fake.float().mean()
                if self.discriminator is not None:
                    loss = loss + self.discriminator(src, fake).float().mean()
            loss.backward()
            return True
        except Exception as exc:  # only out-of-memory means "try smaller"
            if not is_out_of_memory(exc):
                raise
            return False
        finally:
            with torch.no_grad():
                for net, buffers in zip(nets, kept):
                    net.zero_grad(set_to_none=True)
                    for name, value in net.named_buffers():
                        value.copy_(buffers[name])
            free_memory(self.device)

    def state(self) -> dict:
        """Everything a resumed run needs besides the config, history and data sampler."""
        return {
            "generator": self.generator.state_dict(),
            "discriminator": None
            if self.discriminator is None
            else self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": None if self.opt_d is None else self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        if state["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            # the states of the devices there are here: a run resumes on a machine with
            # fewer GPUs (or more: those keep their own)
            for index, rng in enumerate(state["rng_cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(rng, index)


def check_training_memory(
    config: Pix2PixConfig, shapes: list[tuple], host: int | None, device: int | None = None
) -> None:
    """Refuse, before anything is allocated, a run whose crops, padded images or network
    cannot fit (``depth=16, patch_size=65536`` would otherwise allocate tens of GiB in
    the padding alone), naming a batch and patch that fit. The images are held in host
    memory (``host`` bytes available), the network's work on the device (``device``
    bytes; None: the CPU, where both share ``host``)."""

    def needs(batch: int, patch: tuple[int, ...]) -> tuple[int, int]:
        padded = sum(math.prod(max(n, p) for n, p in zip(s[1:], patch)) for s in shapes)
        images = 8 * (config.in_channels + config.out_channels) * padded
        network = unet_bytes(config, batch, patch, training=True)
        return (images + network, 0) if device is None else (images, network)

    def short(batch: int, patch: tuple[int, ...]) -> str | None:
        """Which memory is too small for (batch, patch), with the figures; None: fits."""
        on_host, on_device = needs(batch, patch)
        if host is not None and on_host > 0.8 * host:
            return f"about {gib(on_host)}, more than the {gib(host)} of memory available"
        if device is not None and on_device > 0.8 * device:
            return f"about {gib(on_device)} on the GPU, more than its {gib(device)} free"
        return None

    said = short(config.batch_size, config.patch_size)
    if said is None:
        return
    disc_min = 3 * 2**config.disc_layers if config.gan_mode != "none" else 1
    min_side = config.multiple * math.ceil(disc_min / config.multiple)
    fits = next(
        (
            (b, p)
            for b, p in fallbacks(config.batch_size, config.patch_size, config.multiple, min_side)
            if short(b, p) is None
        ),
        None,
    )
    advice = (
        f"batch_size={fits[0]} with patch_size={fits[1]} would fit"
        if fits
        else "even the smallest batch and patch do not fit: choose a smaller depth or base_channels"
    )
    raise InputError(
        f"training with batch_size={config.batch_size} and patch_size={config.patch_size} "
        f"(depth {config.depth}) needs {said}; {advice}."
    )
