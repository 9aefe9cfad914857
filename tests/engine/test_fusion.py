"""Prediction runs a fused copy of the generator (BatchNorm folded into the convolutions,
channels_last on the CPU): its outputs must equal the trained network's, and the model
itself must stay as it was."""

from dataclasses import replace

import numpy as np
import pytest
import torch

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine import onednn
from napari_pix2pix.engine.fusion import inference_copy
from napari_pix2pix.io.model_file import Pix2PixModel


def _model(dims: int, norm: str) -> Pix2PixModel:
    """A small model whose BatchNorm statistics are far from the identity, as after
    training."""
    torch.manual_seed(dims)
    config = Pix2PixConfig(
        spatial_dims=dims,
        depth=4,
        base_channels=8,
        patch_size=32,
        norm=norm,
        source_low=[0.0],
        source_high=[1000.0],
        target_low=[0.0],
        target_high=[500.0],
    )
    model = Pix2PixModel(config)
    for m in model.generator.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.2, 3.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model


@pytest.mark.parametrize("dims, norm", [(2, "batch"), (3, "batch"), (2, "instance")])
def test_fused_prediction_equals_the_trained_network(dims, norm):
    model = _model(dims, norm)
    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    shape = (64, 96) if dims == 2 else (32, 48, 40)
    image = np.random.default_rng(0).uniform(0, 1000, shape).astype(np.float32)
    axes = "YX" if dims == 2 else "ZYX"
    plain = p2p.predict(model, image, axes, device="cpu", fuse=False)
    fused = p2p.predict(model, image, axes, device="cpu", fuse=True)
    # within 1e-4 of the target's range (500), the bar; in practice float rounding
    assert np.abs(fused - plain).max() <= 1e-4 * 500
    assert np.abs(plain).max() > 1.0  # a real output, not a constant
    after = model.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the model is untouched


@pytest.mark.parametrize("dims", [2, 3])
def test_folded_batchnorm_gives_the_same_outputs(dims):
    """Folding, as on a GPU, checked on the CPU: no BatchNorm left, the same outputs."""
    model = _model(dims, "batch")
    g = model.generator.eval()
    folded = inference_copy(g, torch.device("cpu"), fold=True)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in g.modules())
    x = torch.rand((2, 1) + (32,) * dims) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(folded(x), g(x), atol=1e-5)


def test_on_the_cpu_the_copy_runs_channels_last():
    fused = inference_copy(_model(2, "batch").generator, torch.device("cpu"))
    assert fused.down[1].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not fused.training


@pytest.mark.skipif(not onednn.available(), reason="torch built without oneDNN")
@pytest.mark.parametrize("out_channels", [1, 3])
def test_the_packed_copy_gives_the_same_outputs_at_any_batch_and_tile(out_channels):
    """Packed for batches of 4 tiles of 32 px; other batches and tiles still run right."""
    model = _model(2, "batch")
    if out_channels != 1:
        model = Pix2PixModel(
            replace(
                model.config, out_channels=out_channels, target_low=[0.0] * 3, target_high=[1.0] * 3
            )
        )
    g = model.generator.eval()
    packed = inference_copy(g, torch.device("cpu"), batch_shape=(4, 1, 32, 32))
    kinds = {type(m) for m in packed.modules()}
    assert onednn.PackedConv in kinds and onednn.PhaseTransposedConv in kinds
    assert not kinds & {torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.BatchNorm2d}
    torch.manual_seed(1)
    for shape in [(4, 1, 32, 32), (1, 1, 32, 32), (3, 1, 48, 64)]:
        x = torch.rand(shape) * 2 - 1
        with torch.inference_mode():
            expected = g(x)
            got = packed(x.contiguous(memory_format=torch.channels_last))
        assert got.shape == expected.shape
        # within 1e-4 of the output's range, the bar; a varied output, not zeros
        assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
        assert expected.std() > 1e-3


@pytest.mark.parametrize("out_channels, bias", [(1, True), (2, False), (4, True)])
def test_a_transposed_convolution_equals_its_four_phases(out_channels, bias):
    torch.manual_seed(out_channels)
    conv = torch.nn.ConvTranspose2d(6, out_channels, 4, stride=2, padding=1, bias=bias)
    assert onednn.PhaseTransposedConv.applies(conv)
    phases = onednn.PhaseTransposedConv(conv)
    x = torch.randn(2, 6, 9, 7)
    with torch.inference_mode():
        assert torch.allclose(phases(x), conv(x), atol=1e-5)
    assert not onednn.PhaseTransposedConv.applies(torch.nn.ConvTranspose2d(6, 1, 4, 2, 1, 1))


def test_a_failed_packing_falls_back_to_the_unpacked_copy(monkeypatch):
    """A oneDNN build without the packed kernels must still predict, unpacked."""

    def no_kernels(generator, shape, phases=True):
        raise RuntimeError("mkldnn::_convolution_pointwise is not available")

    monkeypatch.setattr(onednn, "pack", no_kernels)
    g = _model(2, "batch").generator.eval()
    copy = inference_copy(g, torch.device("cpu"), batch_shape=(4, 1, 32, 32))
    assert not any(isinstance(m, onednn.PackedConv) for m in copy.modules())
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(
            copy(x.contiguous(memory_format=torch.channels_last)), g(x), atol=1e-6
        )


def test_packing_reads_each_layers_input_shape_without_running_the_network():
    """The shapes come from a meta-device forward, so a huge tile allocates nothing."""
    g = _model(2, "batch").generator.eval()
    sizes = onednn._input_sizes(g, (4, 1, 8192, 4096))
    assert sizes[g.down[0].conv] == [4, 1, 8192, 4096]
    assert sizes[g.down[3].conv] == [4, 32, 1024, 512]  # after three halvings, width 8 * 4
    assert sizes[g.up[0][0].conv] == [4, 16, 4096, 2048]  # the last decoder level: 2 * 8
    assert all(p.device.type == "cpu" for p in g.parameters())  # the model is untouched
