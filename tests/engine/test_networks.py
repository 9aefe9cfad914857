"""Architecture facts from the paper, 3D models and multi-channel data."""

import numpy as np
import torch

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.networks import build_discriminator, build_generator, receptive_field
from napari_pix2pix.engine.sample_data import make_pair


def test_default_generator_is_the_papers_unet256():
    g = build_generator(Pix2PixConfig(in_channels=3, out_channels=3))
    # the reference implementation's unet_256 (RGB, ngf 64) has 54.41 M parameters
    assert abs(sum(p.numel() for p in g.parameters()) - 54.41e6) < 0.01e6
    dropouts = [m for m in g.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 3 and all(m.p == 0.5 for m in dropouts)
    convs = [m for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    small = build_generator(Pix2PixConfig(depth=4, base_channels=8, patch_size=32)).eval()
    with torch.no_grad():
        y = small(100 * torch.randn(2, 1, 32, 32))
    assert y.abs().max() <= 1.0 and y.shape == (2, 1, 32, 32)  # tanh output


def test_discriminator_is_a_70px_patchgan():
    assert [receptive_field(n) for n in (1, 3, 5)] == [16, 70, 286]
    d = build_discriminator(Pix2PixConfig(in_channels=2, out_channels=3))
    logits = d(torch.zeros(1, 2, 256, 256), torch.zeros(1, 3, 256, 256))
    assert logits.shape == (1, 1, 30, 30)


def test_weights_are_initialised_from_n0_002():
    g = build_generator(Pix2PixConfig(depth=5, base_channels=16, patch_size=32))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.std().item() - 0.02) < 0.002


def test_3d_model_trains_and_tiles_in_3d(tiny):
    source, target = make_pair((24, 48, 48), seed=0, nucleus_radius=5.0)
    tiny.update(patch_size=16, depth=3, disc_layers=1)
    model = p2p.train(source, target, axes="ZYX", spatial_dims=3, steps=4, seed=0, **tiny)
    assert model.config.spatial_dims == 3 and model.config.patch_size == (16, 16, 16)
    out = p2p.predict(model, source, device="cpu")
    assert out.shape == source.shape and np.isfinite(out).all()
    # 3D model on a 2-slice stack with channels as TCZYX-like input
    two = np.stack([source, source])
    assert p2p.predict(model, two, axes="TZYX", device="cpu").shape == two.shape


def test_multichannel_in_and_out(tiny):
    source, target = make_pair((96, 96), seed=0, nucleus_radius=5.0)
    src = np.stack([source, source[::-1], source.T])  # 3 input channels (CYX)
    tgt = np.stack([target, 65535 - target], axis=-1)  # 2 output channels (YXC)
    model = p2p.train(src, tgt, axes="CYX", target_axes="YXC", steps=4, seed=0, **tiny)
    cfg = model.config
    assert (cfg.in_channels, cfg.out_channels) == (3, 2)
    assert len(cfg.source_low) == 3 and len(cfg.target_low) == 2
    out, axes = p2p.predict(model, src, return_axes=True, device="cpu")
    assert axes == "CYX" and out.shape == (2, 96, 96)
    # each output channel lives in its own target units
    assert out[1].mean() > out[0].mean()
