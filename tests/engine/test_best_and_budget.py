"""The best model, not the last; early stopping; a run within a time budget; the run's
CSV and TensorBoard logs."""

import csv
import time

import numpy as np
import pytest
import torch

import napari_pix2pix as p2p
from napari_pix2pix.cli import build_parser
from napari_pix2pix.cli_options import given_options
from napari_pix2pix.engine.best_model import TOLERANCE, BestKeeper
from napari_pix2pix.engine.metrics import image_metrics
from napari_pix2pix.engine.normalization import Normalization
from napari_pix2pix.engine.run_history import RunHistory
from napari_pix2pix.engine.schedule import lr_factor


def held_out_mae(model, pair, val_fraction):
    """The validation MAE of ``model`` recomputed as train does: the right strip, predicted
    with one patch of training columns to its left as context, scored without them."""
    source, target = pair
    n = int(round(source.shape[-1] * val_fraction))
    c = max(model.config.patch_size)
    pred = p2p.predict(model, source[:, -n - c :], tile_size=32)[:, c:]
    norm = Normalization.of(model.config, "target")
    truth = target[:, -n:].astype(np.float32)
    return image_metrics(pred[None, None], truth[None, None], norm)["mae"]


def test_the_most_accurate_model_is_returned_and_recorded(pair, tiny, tmp_path):
    options = dict(tiny, steps=12, val_every=2, val_fraction=0.25, seed=1, lr=0.02)
    best = p2p.train(*pair, checkpoint_dir=tmp_path / "run", keep="accurate", **options)
    last = p2p.train(*pair, keep="last", **options)
    validations = best.history.validation
    maes = [v.metrics["mae"] for v in validations]
    record = best.history.most_accurate
    assert record.metric == "mae" and record.value == min(maes)
    assert record.step == validations[int(np.argmin(maes))].step
    assert best.history.kept == "accurate" and last.history.kept == "last"
    # the returned model is the one that scored best, not the last step's
    assert held_out_mae(best, pair, 0.25) == pytest.approx(record.value, rel=1e-4)
    assert record.step != 12, "pick a run whose best validation is not its last"
    assert held_out_mae(last, pair, 0.25) == pytest.approx(maes[-1], rel=1e-4)
    # beside the checkpoint: the kept model as a model file that says where it came from
    kept = best.history.best
    saved = p2p.load_model(tmp_path / "run" / "best.safetensors")
    assert saved.history.best.step == kept.step
    assert "most accurate validation (mae), step" in "\n".join(best.card())


def test_the_kept_model_is_the_sharpest_of_the_accurate_ones(pair, tiny, tmp_path):
    """keep="best" with a cGAN: among validations at the adversarial term's full weight,
    the lowest spectral distance within the tolerance of the most accurate of them."""
    options = dict(tiny, steps=12, val_every=2, val_fraction=0.25, seed=1, lr=0.02)
    model = p2p.train(*pair, gan_warmup=0.1, checkpoint_dir=tmp_path / "run", **options)
    full = [v for v in model.history.validation if v.step >= 0.2 * 12]
    anchor = min(v.metrics["mae"] for v in full)
    within = [v for v in full if v.metrics["mae"] <= anchor * (1 + TOLERANCE["mae"])]
    record = model.history.best
    assert record.step in [v.step for v in within]
    # chosen as the run goes: no later validation in the band is sharper
    later = [v.metrics["spectral"] for v in within if v.step > record.step]
    assert all(record.metrics["spectral"] <= s for s in later)
    assert len(within) > 1, "pick a run with a choice to make"
    assert model.history.kept == "best"
    assert held_out_mae(model, pair, 0.25) == pytest.approx(record.value, rel=1e-4)
    saved = p2p.load_model(tmp_path / "run" / "best.safetensors")
    for key, value in saved.generator.state_dict().items():
        assert torch.equal(value, model.generator.state_dict()[key]), key


def test_the_selection_rule_step_by_step():
    """Scores given by hand to the keeper, as validations of a run would give them."""
    net = torch.nn.Linear(1, 1)
    history = RunHistory()
    keeper = BestKeeper("mae", None, history)

    def validate(step, mae, spectral, competes=True):
        with torch.no_grad():
            net.weight.fill_(step)
        return keeper.update(step, {"mae": mae, "spectral": spectral}, net, competes)

    assert validate(1, 50.0, 0.9, competes=False)  # L1 warm-up: kept until one competes
    assert validate(2, 100.0, 0.5)  # the first at full weight replaces it, though worse
    assert validate(3, 98.0, 0.3)  # within 5 % and sharper
    assert validate(4, 90.0, 0.6)  # the new most accurate: 98 is now out of tolerance
    assert validate(5, 93.0, 0.2)  # within 5 % of 90 and sharper
    assert not validate(6, 120.0, 0.1)  # sharper but far less accurate
    assert not validate(7, 40.0, 0.1, competes=False)  # too early to be kept now
    assert history.best.step == 5 and history.most_accurate.step == 7
    assert keeper.keep_best(net) == "best" and net.weight.item() == 5
    assert keeper.keep_best(net, "accurate") == "accurate" and net.weight.item() == 7
    plain = BestKeeper("mae", None, RunHistory(), sharp=False)  # L1 only: the best score is kept
    for step, mae in enumerate((5.0, 3.0, 4.0)):
        plain.update(step, {"mae": mae, "spectral": 1.0 - step}, net)
    assert plain.best.step == 1


def test_the_best_by_another_score(pair, tiny):
    model = p2p.train(
        *pair, **dict(tiny, steps=6, val_every=2, val_fraction=0.25, seed=0, val_metric="pearson_r")
    )
    rs = [v.metrics["pearson_r"] for v in model.history.validation]
    assert model.history.best.metric == "pearson_r"
    assert model.history.most_accurate.value == max(rs)


def test_early_stopping(pair, tiny):
    model = p2p.train(
        *pair,
        **dict(tiny, steps=200, val_every=1, val_fraction=0.25, seed=0, lr=0.02, patience=2),
    )
    history = model.history
    assert "no better mae in 2 validations" in history.stopped
    assert history.steps_done < 200
    last_best = history.most_accurate.step
    assert history.steps_done == last_best + 2  # two validations without a better one


def test_a_time_budget_is_honoured(pair):
    # a network of milliseconds per step, so that even a loaded machine takes many
    small = dict(patch_size=16, depth=2, base_channels=4, batch_size=2, disc_layers=1)
    budget = 6.0
    began = time.perf_counter()
    events = list(
        p2p.train_iter(*pair, time_budget=budget, val_fraction=0.25, device="cpu", **small)
    )
    wall = time.perf_counter() - began
    model = events[-1].model
    spent = model.history.train_seconds
    validations = [e for e in events if isinstance(e, p2p.ValidationEvent)]
    assert spent <= budget * 1.1 + 0.5, spent
    assert spent >= budget * 0.5, f"stopped early at {spent:.1f} s of {budget} s"
    assert wall < budget + 15  # data preparation and network building only besides
    # on a schedule through the budget (a tenth of it apart), not only at the end
    assert len(validations) >= 2 and validations[0].step < validations[-1].step
    assert validations[-1].step == model.history.steps_done
    # the schedule follows the budget: the learning rate decays to near 0 by the end
    steps = [e for e in events if isinstance(e, p2p.StepEvent)]
    assert steps[0].lr == pytest.approx(2e-4)
    assert steps[-1].lr < 0.35 * steps[0].lr
    assert model.config.steps >= model.history.steps_done


def test_schedule_by_progress():
    assert lr_factor(0.0) == lr_factor(0.49) == 1.0
    assert lr_factor(0.75) == pytest.approx(0.5)
    assert lr_factor(1.0) == 0.0


def test_the_run_log(pair, tiny, tmp_path):
    run = tmp_path / "run"
    p2p.train(*pair, checkpoint_dir=run, steps=6, val_every=3, val_fraction=0.25, **tiny)
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [r for r in rows if r["kind"] == "step"]
    validations = [r for r in rows if r["kind"] == "validation"]
    assert [int(r["step"]) for r in steps] == [1, 2, 3, 4, 5, 6]
    assert [int(r["step"]) for r in validations] == [3, 6]
    assert all(float(r["g_l1"]) > 0 for r in steps) and all(r["mae"] for r in validations)
    pytest.importorskip("tensorboard")
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_a_resumed_run_log_drops_the_lost_steps(pair, tiny, tmp_path):
    run = tmp_path / "run"
    options = dict(tiny, steps=8, val_every=4, val_fraction=0.25, seed=0)
    for event in p2p.train_iter(*pair, checkpoint_dir=run, **options):
        if event.step == 6:
            break  # a checkpoint at 6 (stopped early), rows up to 6
    with open(run / "log.csv", "a") as f:
        f.write("step,7,0,0,,,,,,,,,,,\n")  # written after the checkpoint, then lost
    p2p.train(*pair, resume=run, **options)
    with open(run / "log.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r["kind"] == "step"]
    assert steps == list(range(1, 9))


def test_cli_takes_the_budget_in_minutes():
    parser, declared = build_parser()
    argv = ["train", "s.tif", "t.tif", "-o", "m.safetensors", "--time-budget", "1.5"]
    assert given_options(parser.parse_args(argv), declared["train"])["time_budget"] == 90.0


def test_a_resumed_run_keeps_its_time_budget(pair, tmp_path):
    small = dict(patch_size=16, depth=2, base_channels=4, batch_size=2, disc_layers=1)
    run, budget = tmp_path / "run", 4.0
    it = p2p.train_iter(*pair, checkpoint_dir=run, time_budget=budget, device="cpu", **small)
    for event in it:
        if event.step == 5:
            break
    it.close()  # stopped (Ctrl-C, Stop): a checkpoint of step 5
    began = time.perf_counter()
    model = p2p.train(*pair, resume=run)  # the budget is not given again
    assert time.perf_counter() - began < budget + 15  # it ends, on its own budget
    assert model.history.time_budget == budget
    assert budget * 0.5 <= model.history.train_seconds <= budget * 1.1 + 0.5


def test_a_budgeted_checkpoint_without_its_budget_asks_for_it(pair, tmp_path, monkeypatch):
    """Checkpoints written before budgets were recorded: resuming would never end."""
    from napari_pix2pix.io import checkpoint

    small = dict(patch_size=16, depth=2, base_channels=4, batch_size=2, disc_layers=1)
    run = tmp_path / "run"
    it = p2p.train_iter(*pair, checkpoint_dir=run, time_budget=60, device="cpu", **small)
    for event in it:
        if event.step == 2:
            break
    it.close()
    load = checkpoint.load_checkpoint

    def without_budget(location):
        ckpt = load(location)
        ckpt.history.time_budget = None
        return ckpt

    monkeypatch.setattr("napari_pix2pix.workflows.run_setup.load_checkpoint", without_budget)
    with pytest.raises(p2p.InputError, match="was limited by time, .* give time_budget="):
        p2p.train(*pair, resume=run)


def test_options_a_resumed_run_does_not_use_are_said(pair, tiny, tmp_path):
    run = tmp_path / "run"
    p2p.train(*pair, checkpoint_dir=run, steps=2, val_fraction=0, **tiny)
    same = {**tiny, "percentiles": [0.5, 99.5]}  # the run's own values, as a form gives them
    notes = [
        e.message
        for e in p2p.train_iter(*pair, resume=run, steps=3, val_fraction=0, **same)
        if isinstance(e, p2p.WarningEvent)
    ]
    assert not any("resumed run" in n for n in notes)
    changed = {**tiny, "patch_size": 64, "lr": 1e-3}
    notes = [
        e.message
        for e in p2p.train_iter(*pair, resume=run, steps=4, val_fraction=0, **changed)
        if isinstance(e, p2p.WarningEvent)
    ]
    said = next(n for n in notes if "resumed run goes on as it was set up" in n)
    assert "patch_size=64 (the run's: (32, 32))" in said and "lr=0.001" in said
