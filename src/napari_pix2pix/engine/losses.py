"""The pix2pix objective's adversarial term."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
