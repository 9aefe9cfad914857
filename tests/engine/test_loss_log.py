"""The loss log reads the losses once per entry (not at every step), keeps none twice and
loses none, and stops a diverged run with advice once the NaN is logged."""

import numpy as np
import pytest
import torch
from tiny_options import TINY

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine import loss_log
from napari_pix2pix.engine.loss_log import LossLog
from napari_pix2pix.engine.networks import build_generator
from napari_pix2pix.engine.run_history import RunHistory
from napari_pix2pix.engine.trainer import Trainer
from napari_pix2pix.errors import TrainingError


def test_entries_are_the_means_of_the_steps_since_the_last_one():
    history = RunHistory()
    log = LossLog(history, steps=10_000, timed=False)  # an entry every 10 steps
    values = np.random.default_rng(0).random((25, 2))
    written = []
    for step, (a, b) in enumerate(values, start=1):
        log.add({"g_l1": torch.tensor(a, dtype=torch.float32), "g_gan": torch.tensor(b)})
        if log.due(step) and log.write(step):
            written.append(step)
    assert log.write(25) and not log.write(25)  # the run's end: the rest, then nothing
    assert written == [1, 10, 20] and history.losses["step"] == [1, 10, 20, 25]
    windows = [values[0:1], values[1:10], values[10:20], values[20:25]]
    expected = [w[:, 0].astype(np.float32).mean() for w in windows]
    np.testing.assert_allclose(history.losses["g_l1"], expected, rtol=1e-6)
    assert log.latest["g_gan"] == pytest.approx(values[20:25, 1].mean(), rel=1e-6)


def test_a_time_budget_logs_by_the_clock(monkeypatch):
    log = LossLog(RunHistory(), steps=10**9, timed=True)
    log.add({"g_l1": torch.tensor(1.0)})
    assert log.due(1) and log.write(1)
    assert not log.due(2)  # just written
    monkeypatch.setattr(loss_log, "LOG_SECONDS", 0.0)
    assert log.due(2)


def test_a_nan_loss_stops_the_run_after_it_is_logged():
    history = RunHistory()
    log = LossLog(history, steps=100, timed=False)
    log.add({"g_l1": torch.tensor(0.5), "d_real": torch.tensor(float("nan"))})
    with pytest.raises(TrainingError, match="diverged by step 3: the d_real loss.*lr="):
        log.write(3)
    assert history.losses["step"] == [3]  # in the record the user reads
    log.add({"g_l1": torch.tensor(float("inf"))})
    assert log.write(4, check=False)  # a run stopped by the user: logged, not raised


def test_a_step_hands_back_detached_tensors_not_floats():
    """Floats would make the CPU wait for the device mid-step; tensors holding their
    graph would keep every step's activations alive until the next entry."""
    config = Pix2PixConfig(**{k: v for k, v in TINY.items() if k != "device"})
    trainer = Trainer(config, build_generator(config), torch.device("cpu"), None)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    losses = trainer.step(x, x.clone(), 1, 0.9)
    assert set(losses) == {"d_real", "d_fake", "g_gan", "g_l1", "g_total"}
    for value in losses.values():
        assert isinstance(value, torch.Tensor) and value.ndim == 0 and not value.requires_grad


def test_events_between_entries_show_the_latest_entry(pair, monkeypatch):
    monkeypatch.setattr(loss_log, "ENTRIES", 10)  # 30 steps: an entry every 3
    monkeypatch.setattr(loss_log, "LOG_SECONDS", 1e9)
    source, target = pair
    events = [
        e
        for e in p2p.train_iter(source, target, steps=30, val_fraction=0, seed=0, **TINY)
        if isinstance(e, p2p.StepEvent)
    ]
    model = events[-1].model
    entries = model.history.losses["step"]
    assert [e.step for e in events if e.logged] == entries == [1, *range(3, 31, 3)]
    for event in events:  # between entries: the last entry's means, as floats
        last = max(s for s in entries if s <= event.step)
        i = entries.index(last)
        assert event.losses["g_l1"] == model.history.losses["g_l1"][i]
