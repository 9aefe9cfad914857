"""Training learns, is repeatable, reports progress and stops/resumes cleanly."""

from dataclasses import replace

import numpy as np
import pytest
import torch

import napari_pix2pix as p2p
from napari_pix2pix.engine.normalization import Normalization
from napari_pix2pix.io.model_file import Pix2PixModel


def mean_abs(a, b):
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def test_training_beats_untrained_model_and_identity(trained, held_out_pair):
    source, target = held_out_pair
    cfg = trained.config
    untrained = Pix2PixModel(cfg)  # same architecture and normalization, initial weights
    # identity: the source itself, mapped from its percentile range into the target's
    identity = Normalization.of(cfg, "target").inverse(
        Normalization.of(cfg, "source").forward(source[None])
    )[0]
    trained_err = mean_abs(p2p.predict(trained, source, device="cpu"), target)
    untrained_err = mean_abs(p2p.predict(untrained, source, device="cpu"), target)
    identity_err = mean_abs(identity, target)
    assert trained_err < 0.5 * untrained_err
    assert trained_err < 0.5 * identity_err


def test_history_records_losses_and_validation(trained):
    h = trained.history
    assert h.steps_done == 300
    assert len(h.losses["step"]) == 300 and h.losses["step"][-1] == 300
    assert {"g_l1", "g_gan", "d_real", "d_fake"} <= set(h.losses)
    assert [v.step for v in h.validation] == [100, 200, 300]
    # the L1 loss falls during training
    l1 = h.losses["g_l1"]
    assert np.mean(l1[-50:]) < 0.6 * np.mean(l1[:20])
    assert set(h.final_metrics) == {"mae", "psnr", "ssim", "pearson_r", "std_ratio", "spectral"}
    assert h.final_metrics["pearson_r"] > 0.5
    assert h.final_metrics["std_ratio"] > 0.5  # not collapsed to a flat image


def test_collapse_is_reported(pair, tiny):
    """A generator that cannot learn (the target is noise unrelated to the source) gives
    flat predictions: train_iter says so once, with advice."""
    source, _ = pair
    noise = np.random.default_rng(3).random(source.shape).astype(np.float32)
    events = list(p2p.train_iter(source, noise, steps=60, gan_mode="none", val_every=20, **tiny))
    warnings = [e for e in events if isinstance(e, p2p.WarningEvent)]
    assert len(warnings) == 2 and "nearly flat" in warnings[0].message  # once, during it
    assert "train longer" in warnings[0].message
    assert "is weak" in warnings[1].message and warnings[1].step == 60  # and at the end
    ratios = [v.metrics["std_ratio"] for v in events[-1].model.history.validation]
    assert ratios[-1] < 0.25


def test_train_iter_events(pair, tiny):
    source, target = pair
    events = list(p2p.train_iter(source, target, steps=6, val_every=3, seed=0, **tiny))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["StepEvent"] * 3 + ["ValidationEvent"] + ["StepEvent"] * 3 + [
        "ValidationEvent",
        "WarningEvent",  # six steps make a weak model, which the run says before it ends
        "FinishedEvent",
    ]
    step = events[0]
    assert step.step == 1 and step.total == 6 and step.losses["g_l1"] > 0 and step.lr == 2e-4
    val = events[3]
    assert set(val.metrics) == {"mae", "psnr", "ssim", "pearson_r", "std_ratio", "spectral"}
    assert val.preview.ndim == 2 and val.preview.shape == val.preview_target.shape
    assert isinstance(events[-1].model, p2p.Pix2PixModel)


def test_same_seed_same_weights_on_cpu(pair, tiny):
    source, target = pair
    a = p2p.train(source, target, steps=5, seed=3, val_fraction=0, **tiny)
    b = p2p.train(source, target, steps=5, seed=3, val_fraction=0, **tiny)
    c = p2p.train(source, target, steps=5, seed=4, val_fraction=0, **tiny)
    wa, wb, wc = (m.generator.state_dict() for m in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_lr_is_constant_then_decays_linearly(pair, tiny):
    source, target = pair
    lrs = [
        e.lr
        for e in p2p.train_iter(source, target, steps=8, val_fraction=0, seed=0, **tiny)
        if isinstance(e, p2p.StepEvent)
    ]
    assert lrs[:4] == [2e-4] * 4
    assert lrs[4:] == pytest.approx([2e-4, 1.5e-4, 1e-4, 0.5e-4])


@pytest.mark.parametrize("gan_mode", ["lsgan", "hinge", "none"])
def test_gan_modes_train(pair, gan_mode, tiny):
    source, target = pair
    model = p2p.train(source, target, steps=4, gan_mode=gan_mode, val_fraction=0, seed=0, **tiny)
    losses = model.history.losses
    assert np.isfinite(losses["g_l1"]).all()
    assert ("d_real" in losses) == (gan_mode != "none")


def test_stop_early_then_resume_continues_step_count(pair, tmp_path, tiny):
    source, target = pair
    events = p2p.train_iter(
        source, target, steps=10, val_fraction=0, seed=0, checkpoint_dir=tmp_path, **tiny
    )
    for event in events:
        if event.step == 4:
            break
    events.close()  # the consumer stops iterating
    assert event.model.history.steps_done == 4
    assert not event.model.generator.training
    assert (tmp_path / "checkpoint.safetensors").is_file()

    resumed = list(
        p2p.train_iter(source, target, steps=10, val_fraction=0, seed=0, resume=tmp_path, **tiny)
    )
    assert resumed[0].step == 5 and resumed[-1].step == 10
    # without steps, a resumed run keeps the checkpoint's length (not the 2000 default)
    events = p2p.train_iter(source, target, val_fraction=0, resume=tmp_path, **tiny)
    assert next(events).total == 10
    events.close()
    full = p2p.train(source, target, steps=10, val_fraction=0, seed=0, **tiny)
    w_resumed = resumed[-1].model.generator.state_dict()
    w_full = full.generator.state_dict()
    assert all(torch.allclose(w_resumed[k].float(), w_full[k].float(), atol=1e-6) for k in w_full)


def test_several_pairs_and_stack_as_slices(pair, tiny):
    source, target = pair
    stack_s = np.stack([source, source[::-1]])
    stack_t = np.stack([target, target[::-1]])
    model = p2p.train(stack_s, stack_t, axes="ZYX", steps=3, seed=0, val_fraction=0.5, **tiny)
    assert model.history.split.startswith("last 1 of 2")  # whole slices held out
    model = p2p.train(stack_s, stack_t, axes="ZYX", steps=3, seed=0, val_fraction=0.1, **tiny)
    assert model.history.split.startswith("right 10%")  # too few slices: a region
    model = p2p.train([source, source.T], [target, target.T], axes="YX", steps=3, seed=0, **tiny)
    assert model.config.source_axes == "YX"


def test_config_is_stored_in_the_model(trained):
    cfg = trained.config
    assert cfg.depth == 4 and cfg.base_channels == 8 and cfg.patch_size == (32, 32)
    assert cfg.lambda_l1 == 100.0 and cfg.gan_mode == "vanilla" and cfg.betas == (0.5, 0.999)
    assert len(cfg.source_low) == 1 and cfg.source_high[0] > cfg.source_low[0]


def test_bf16_autocast_on_cpu(pair, tiny):
    source, target = pair
    model = p2p.train(source, target, steps=3, amp="bf16", val_fraction=0, seed=0, **tiny)
    assert np.isfinite(model.history.losses["g_l1"]).all()
    fp32 = p2p.predict(model, source, device="cpu")
    bf16 = p2p.predict(model, source, device="cpu", amp="bf16")
    span = model.config.target_high[0] - model.config.target_low[0]
    assert np.abs(bf16 - fp32).mean() < 0.02 * span


def test_axes_default_to_the_files(pair, tmp_path, tiny):
    from napari_pix2pix import write_image

    source, target = pair
    stack_s, stack_t = np.stack([source] * 3), np.stack([target] * 3)
    write_image(tmp_path / "s.tif", stack_s, "ZYX")
    write_image(tmp_path / "t.tif", stack_t, "ZYX")
    model = p2p.train(tmp_path / "s.tif", tmp_path / "t.tif", axes=None, steps=2, seed=0, **tiny)
    assert (model.config.source_axes, model.config.target_axes) == ("ZYX", "ZYX")


def test_warning_events_for_small_images(pair, tiny):
    source, target = pair
    events = list(p2p.train_iter(source[:20, :100], target[:20, :100], steps=1, seed=0, **tiny))
    warnings = [e.message for e in events if isinstance(e, p2p.WarningEvent)]
    assert any("reflect-padded" in w for w in warnings)
    assert any("too small for SSIM" in w for w in warnings)


def test_adversarial_warm_up_schedule():
    from napari_pix2pix.engine.schedule import adversarial_weight

    config = p2p.Pix2PixConfig(gan_warmup=0.1, steps=1000)
    weights = [adversarial_weight(s / 1000, config.gan_warmup) for s in (1, 100, 150, 200, 1000)]
    assert weights == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    assert adversarial_weight(0.001, 0.0) == 1.0


def test_foreground_crops_find_sparse_structures():
    from napari_pix2pix.engine.sampling import PairedPatchSampler

    rng = np.random.default_rng(0)
    source = rng.random((1, 256, 256)).astype(np.float32)
    target = -np.ones((1, 256, 256), np.float32)
    target[0, 200:210, 30:40] = 1.0  # one small bright object in a large empty field
    hits = {}
    for share in (0.0, 0.5):
        sampler = PairedPatchSampler([(source, target)], (32, 32), seed=0, foreground=share)
        hits[share] = (
            sum(int((sampler.batch(4)[1] > 0).flatten(1).any(1).sum()) for _ in range(50)) / 200
        )
    assert hits[0.0] < 0.15 and hits[0.5] > 0.4


@pytest.mark.parametrize("displaced", [0, 6])
def test_misaligned_validation_pairs_are_reported(pair, tiny, displaced):
    """The validation predictions are compared with their targets (one modality, so
    plain cross-correlation works): a target displaced by 6 px is reported with its
    measured shift and uncertainty; an aligned one is not."""
    from napari_pix2pix.engine.sample_data import make_pair

    source, target = pair
    s, t = make_pair((192, 192), seed=5, nucleus_radius=5.0)
    val_source, val_target = s[8:-8, 8:-8], t[8:-8, 8 + displaced : 184 + displaced]
    plain = dict(augment_zoom=0, augment_elastic=0, gan_mode="none", seed=0)
    events = list(
        p2p.train_iter(
            source,
            target,
            val_source=val_source,
            val_target=val_target,
            steps=200,
            val_every=100,
            **plain,
            **tiny,
        )
    )
    # (a short run's model is weak too, which it says at the end: not what is tested here)
    said = [
        e.message for e in events if isinstance(e, p2p.WarningEvent) and "weak" not in e.message
    ]
    record = events[-1].model.history.validation_shift
    if displaced:
        assert len(said) == 1 and "displaced from their targets" in said[0], said
        assert abs(record["shift"][1] + displaced) < 1.5 and abs(record["shift"][0]) < 1.5
        assert record["uncertainty"] < 1.0
    else:
        assert not said, said
        assert max(abs(v) for v in record["shift"]) < 1.0


def test_a_validation_part_too_small_for_its_metric_is_refused(pair, tiny):
    """val_metric='ssim' on an 8 px validation pair would score NaN every time and keep
    no model: refused before training, naming the size and the fix."""
    source, target = pair
    with pytest.raises(p2p.InputError, match=r"at least 11 px .* is 8 px: use larger validation"):
        p2p.train(
            source, target, val_source=source[:8, :8], val_target=target[:8, :8],
            val_metric="ssim", steps=2, **tiny,
        )  # fmt: skip
    model = p2p.train(
        source, target, val_source=source[:8, :8], val_target=target[:8, :8], steps=2, **tiny
    )
    assert model.history.best is not None  # another metric still keeps a model


def test_a_val_fraction_that_leaves_a_sliver_to_train_on_is_named(pair, tiny):
    source, target = pair
    events = list(p2p.train_iter(source, target, steps=1, val_fraction=0.9, seed=0, **tiny))
    said = " ".join(e.message for e in events if isinstance(e, p2p.WarningEvent))
    assert "val_fraction=0.9 holds out most of the data" in said


def test_a_weak_kept_model_is_named_with_advice(pair, tiny):
    """Three steps give a flat model: the run says so when it ends, with what helps."""
    source, target = pair
    weak = r"model kept \(step 3 of 3\) is weak: validation r -?0\.\d\d, its predictions vary"
    with pytest.warns(UserWarning, match=weak + r".* \(flat\)\. More training pairs.*lambda_l1"):
        p2p.train(source, target, steps=3, val_every=3, seed=0, **tiny)


def test_a_working_model_is_not_called_weak(trained):
    from napari_pix2pix.engine.loop import WEAK_R, WEAK_STD_RATIO, _weak_message

    kept = trained.history.best.metrics
    assert kept["pearson_r"] > WEAK_R and kept["std_ratio"] > WEAK_STD_RATIO
    assert _weak_message(trained.config, trained.history, 300) is None
    best = replace(trained.history.best, step=200, metrics={**kept, "std_ratio": 0.5})
    flat = replace(trained.history, best=best)
    assert "(step 200 of 300) is weak" in _weak_message(trained.config, flat, 300)
