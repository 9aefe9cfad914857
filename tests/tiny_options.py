"""The training options the tests share: tiny but real, a depth-4 U-Net and a 2-layer
PatchGAN train in seconds on the CPU."""

TINY = dict(
    patch_size=32,
    depth=4,
    base_channels=8,
    batch_size=4,
    disc_layers=2,
    disc_channels=8,
    device="cpu",
)
# two steps, no validation: for tests about what happens around training, not in it
FAST = {**TINY, "steps": 2, "batch_size": 2, "val_fraction": 0.0}
