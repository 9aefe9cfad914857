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


def untrained_model(path, **sizes):
    """A valid, untrained model file with the tiny network (or ``sizes`` instead) and
    its normalization set: enough to predict and to be refused for what it is."""
    from napari_pix2pix.config import Pix2PixConfig
    from napari_pix2pix.io.model_file import Pix2PixModel

    network = dict(depth=4, patch_size=32, base_channels=8, disc_layers=2, disc_channels=8)
    config = Pix2PixConfig(
        **{**network, **sizes},
        source_low=[0.0],
        source_high=[1.0],
        target_low=[0.0],
        target_high=[1.0],
    )
    return Pix2PixModel(config).save(path)
