"""The CUDA path: training and prediction in fp32, bf16 and fp16 autocast (fp16 with the
GradScaler; channels-last in 2D), the out-of-memory retry on a real CUDA out-of-memory
error, checkpoint and resume on the GPU, predict_lazy with the model on CUDA. Skipped
without CUDA; run on a GPU box by benchmarks/gpu_check.sh."""

import warnings

import numpy as np
import pytest
import torch
from tiny_options import TINY

import napari_pix2pix as p2p

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
CUDA = {**TINY, "device": "cuda"}


@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_train_and_predict_on_cuda(pair, amp):
    source, target = pair
    after_first = None
    for event in p2p.train_iter(source, target, steps=6, val_every=3, amp=amp, **CUDA):
        if isinstance(event, p2p.StepEvent) and event.step == 1:
            after_first = {k: v.clone() for k, v in event.model.generator.state_dict().items()}
            # 2D under autocast: channels-last weights, the tensor cores' layout
            conv = next(
                p
                for p in event.model.generator.parameters()
                if p.ndim == 4 and min(p.shape[1:]) > 1
            )
            assert conv.is_contiguous(memory_format=torch.channels_last) == (amp != "off")
        model = event.model
    assert model.history.steps_done == 6
    # the weights moved after step 1: not every fp16 step was skipped by the loss scaler
    now = model.generator.state_dict()
    assert any(not torch.equal(now[k], after_first[k]) for k in now if now[k].is_floating_point())
    assert model.history.device.startswith("cuda")
    assert np.isfinite(model.history.losses["g_l1"]).all()
    exact = p2p.predict(model, source, device="cuda", amp="off")
    mixed = p2p.predict(model, source, device="cuda", amp="bf16" if amp == "off" else amp)
    assert exact.shape == source.shape and np.isfinite(mixed).all()
    span = model.config.target_high[0] - model.config.target_low[0]
    assert np.abs(mixed - exact).max() < 0.05 * span  # autocast changes little
    on_cpu = p2p.predict(model, source, device="cpu", fuse=False)
    assert np.abs(on_cpu - exact).max() < 1e-3 * span  # the same network on both devices


def test_a_real_cuda_out_of_memory_is_retried_with_smaller_tiles(pair):
    source, target = pair
    model = p2p.train(source, target, steps=2, val_fraction=0.0, **CUDA)
    big = np.tile(source, (16, 16))  # 2048 x 2048: 64 tiles of 256 px
    expected = p2p.predict(model, big, device="cuda", tile_size=64, batch_size=1)
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    # a per-process cap that mem_get_info does not show, so the memory estimate lets the
    # batch of 64 tiles (several GB of activations) start and CUDA really runs out
    torch.cuda.set_per_process_memory_fraction(min(1.0, 300e6 / total))  # ~300 MB
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            out = p2p.predict(model, big, device="cuda", tile_size=256, batch_size=64)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert any("out of memory" in str(w.message) for w in said)
    assert out.shape == big.shape and np.isfinite(out).all()
    span = model.config.target_high[0] - model.config.target_low[0]
    assert np.abs(out - expected).mean() < 0.05 * span


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_checkpoint_and_resume_on_cuda(pair, tmp_path, amp):
    from napari_pix2pix.io.checkpoint import load_checkpoint

    source, target = pair
    options = dict(CUDA, val_fraction=0.25, val_every=2, seed=0, amp=amp, keep="last")
    straight = p2p.train(source, target, steps=6, **options)
    events = p2p.train_iter(source, target, steps=6, checkpoint_dir=tmp_path / "run", **options)
    for event in events:
        if isinstance(event, p2p.StepEvent) and event.step == 3:
            break
    events.close()
    at_3 = load_checkpoint(tmp_path / "run").trainer["generator"]
    resumed = p2p.train(source, target, steps=6, resume=tmp_path / "run", **options)
    assert resumed.history.steps_done == 6
    a, b = straight.generator.state_dict(), resumed.generator.state_dict()
    keys = [k for k in a if a[k].is_floating_point()]
    # cuDNN's kernels are not bit-reproducible: close, not equal. Close means far below
    # what the last three steps moved the weights: a resume that dropped the optimizer's
    # or the random state would differ by about that much
    moved = max((a[k].float() - at_3[k].float().to(a[k].device)).abs().max() for k in keys)
    differ = max((a[k].float() - b[k].float()).abs().max() for k in keys)
    assert moved > 0 and differ < 0.1 * moved, (float(differ), float(moved))


def test_predict_lazy_with_the_model_on_cuda(pair):
    pytest.importorskip("dask")
    source, target = pair
    model = p2p.train(source, target, steps=2, val_fraction=0.0, **CUDA)
    stack = np.stack([source, source[::-1]])
    lazy = p2p.predict_lazy(model, stack, axes="ZYX", device="cuda")
    expected = p2p.predict(model, stack, axes="ZYX", device="cuda")
    np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-4, atol=1e-2)
