"""The terms of the pix2pix objective a training step reports, declared once: their key
(in a step's losses, the run's loss log, log.csv and TensorBoard), what a person calls
them, which network they train and what they measure, as a formula. The trainer reports
these terms, the run log writes a column of each, the Train widget's plot draws and
explains them: a new term is added here, and everywhere at once.

In the formulas x is the source, y the target, G the generator and D the PatchGAN
discriminator (its logits, one per patch, averaged): engine/trainer.py and losses.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossTerm:
    name: str  # the key (g_l1, ...)
    label: str  # in words, for a legend
    network: str  # the network it trains: "generator" or "discriminator"
    formula: str  # what it measures, for a hover text
    drawn: bool = True  # on the loss plot (g_total is the others, weighted: not drawn)


LOSS_TERMS = (
    LossTerm(
        "g_total",
        "generator total",
        "generator",
        "generator total: λ L1 × the L1 loss + the adversarial loss (weighted by its "
        "warm-up), what the generator minimizes.",
        drawn=False,
    ),
    LossTerm(
        "g_l1",
        "L1 (generator)",
        "generator",
        "L1 (generator): mean |G(x) − y| on the normalized target (−1 to 1), how far the "
        "prediction is from the target pixel by pixel. The generator minimizes "
        "λ L1 × this + the adversarial loss.",
    ),
    LossTerm(
        "g_gan",
        "adversarial (generator)",
        "generator",
        "adversarial (generator): the cGAN loss of D(x, G(x)) as real. vanilla: binary "
        "cross-entropy of the logits against 1; lsgan: mean (D(x, G(x)) − 1)²; hinge: "
        "−mean D(x, G(x)). Low when the generated images fool the discriminator.",
    ),
    LossTerm(
        "d_real",
        "discriminator, real",
        "discriminator",
        "discriminator, real: the cGAN loss of D(x, y) as real. vanilla: binary "
        "cross-entropy of the logits against 1; lsgan: mean (D(x, y) − 1)²; hinge: "
        "mean max(0, 1 − D(x, y)). Low when the discriminator takes real pairs for real; "
        "half of its loss.",
    ),
    LossTerm(
        "d_fake",
        "discriminator, fake",
        "discriminator",
        "discriminator, fake: the cGAN loss of D(x, G(x)) as fake. vanilla: binary "
        "cross-entropy of the logits against 0; lsgan: mean D(x, G(x))²; hinge: "
        "mean max(0, 1 + D(x, G(x))). Low when the discriminator spots the generated "
        "images; the other half of its loss.",
    ),
)
LOSS_NAMES = tuple(term.name for term in LOSS_TERMS)
DRAWN_LOSSES = tuple(term.name for term in LOSS_TERMS if term.drawn)
