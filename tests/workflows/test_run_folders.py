"""A run folder belongs to one run at a time, a run resumes only on the data it was
trained on, and a run stopped by a signal (Ctrl-C, SIGTERM) or killed (SIGKILL) leaves
what it promises: a resumable checkpoint of its last whole step, and its log up to a
few seconds before the end."""

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from tiny_options import FAST

import napari_pix2pix as p2p
from napari_pix2pix import write_image
from napari_pix2pix.io.checkpoint import load_checkpoint, save_checkpoint
from napari_pix2pix.io.run_lock import LOCK_NAME
from napari_pix2pix.io.run_log import FLUSH_SECONDS, LOG_NAME

CLI = "--patch-size 32 --depth 4 --base-channels 8 --batch-size 4 --disc-layers 2 "
CLI = (CLI + "--disc-channels 8 --device cpu --seed 0 --val-fraction 0").split()


class CliRun:
    """A CLI training in a child process, its progress bar followed as it goes."""

    def __init__(self, tmp_path, *args: str) -> None:
        cli = [sys.executable, "-m", "napari_pix2pix.cli", "train"]
        cli += [str(tmp_path / "s.tif"), str(tmp_path / "t.tif"), *args]
        env = {**os.environ, "OMP_NUM_THREADS": "2"}
        self.child = subprocess.Popen(
            cli, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.child.stderr.read(1), ""):
            self.err.append(chunk)

    def step(self) -> int:
        """The last step the progress bar showed (0 before the first)."""
        done = re.findall(r"(\d+)/\d+ \[", "".join(self.err))
        return int(done[-1]) if done else 0

    def wait_for_step(self, step: int, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while self.step() < step:
            assert self.child.poll() is None, "".join(self.err)
            assert time.monotonic() < deadline, "".join(self.err)
            time.sleep(0.05)
        return time.monotonic()

    def end(self, signum: int) -> int:
        self.child.send_signal(signum)
        code = self.child.wait(timeout=120)
        time.sleep(0.1)  # the reader's last chunks
        return code


@pytest.fixture
def files(pair, tmp_path):
    source, target = pair
    write_image(tmp_path / "s.tif", source, "YX")
    write_image(tmp_path / "t.tif", target, "YX")
    return tmp_path


def read_pair(folder):
    return tuple(p2p.read_image(folder / name).array for name in ("s.tif", "t.tif"))


def logged(run) -> list[dict]:
    with open(run / LOG_NAME, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_a_run_owns_its_folder_and_a_kill_loses_seconds_of_its_log(files):
    """A CLI run in another process owns its folder: runs started on it are refused,
    naming it. SIGKILLed (which releases the lock), its log holds the rows up to a few
    seconds before the kill, though it never validated (steps large enough that 50 of
    them, when logs were written out before, take longer than the run)."""
    run = files / "run"
    heavy = ["--patch-size", "128", "--depth", "5", "--base-channels", "16", "--batch-size", "8"]
    out = str(files / "first.safetensors")
    owner = CliRun(
        files, "-o", out, "--steps", "100000", "--checkpoint-dir", str(run), *CLI, *heavy
    )
    source, target = read_pair(files)
    try:
        began = owner.wait_for_step(1)
        named = rf"in use by another training run \(process {owner.child.pid} on .*, since "
        with pytest.raises(p2p.InputError, match=named + ".*another folder.*or wait"):
            p2p.train(source, target, checkpoint_dir=run, **FAST)
        with pytest.raises(p2p.InputError, match=named):  # nor resumed while it runs
            p2p.train(source, target, resume=run, **FAST)
        time.sleep(max(0.0, began + 3 * FLUSH_SECONDS - time.monotonic()))
        assert owner.child.poll() is None  # the refusals left it alone
    finally:
        assert owner.end(signal.SIGKILL) == -signal.SIGKILL
    rows = logged(run)
    assert rows and all(r["kind"] == "step" for r in rows)
    # no more than FLUSH_SECONDS (and the step under way) lost of its 3 * FLUSH_SECONDS
    assert float(rows[-1]["seconds"]) >= FLUSH_SECONDS - 0.5, rows[-1]
    # the lock went with the killed process: the folder is free again (a run that left
    # no checkpoint starts again in it), and a run that ends removes its lock file
    assert p2p.train(source, target, checkpoint_dir=run, **FAST).history.steps_done == 2
    assert not (run / LOCK_NAME).exists()


def test_two_runs_in_one_process_take_turns(pair, tmp_path):
    source, target = pair
    run = tmp_path / "run"
    first = p2p.train_iter(source, target, checkpoint_dir=run, **{**FAST, "steps": 4})
    assert next(first).step == 1
    with pytest.raises(p2p.InputError, match=rf"process {os.getpid()} on .*, this one"):
        p2p.train(source, target, checkpoint_dir=run, **FAST)
    first.close()  # stopped: the checkpoint of step 1 written, the folder given up
    # a run refused before its first step gives the folder up too
    with pytest.raises(p2p.InputError, match="target normalization"):
        p2p.train(source, target * 3.0, resume=run, **FAST)
    assert p2p.train(source, target, resume=run, **FAST).history.steps_done == 4


def test_sigterm_leaves_a_checkpoint_that_resume_continues(files):
    """A cluster's time limit sends SIGTERM, mostly in the middle of a step: the run
    ends after that step, with the checkpoint of it beside the model it saves."""
    run, out = files / "run", files / "m.safetensors"
    cli = CliRun(files, "-o", str(out), "--steps", "100000", "--checkpoint-dir", str(run), *CLI)
    cli.wait_for_step(3)
    assert cli.end(signal.SIGTERM) == 130, "".join(cli.err)
    kept = load_checkpoint(run)  # none was due before step 10000
    assert kept.step >= 3
    assert p2p.load_model(out).history.steps_done == kept.step
    assert logged(run)[-1]["step"] == str(kept.step)  # the log as far as the checkpoint
    source, target = read_pair(files)
    resumed = p2p.train(source, target, resume=run, time_budget=1.0)  # a few more steps
    done = resumed.history.steps_done
    assert done > kept.step
    logged_steps = resumed.history.losses["step"]  # every 100th step, then ~every 0.5 s
    assert kept.step in logged_steps and logged_steps[-1] == done  # none lost or twice
    assert logged_steps == sorted(set(logged_steps))


@pytest.fixture
def ctrl_c():
    """Python's own Ctrl-C handler, as in a terminal: a shell starts background jobs
    (CI's too) with SIGINT ignored, and a run there would never be stopped by it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_mid_step_leaves_the_checkpoint_of_the_last_whole_step(pair, tmp_path, ctrl_c):
    source, target = pair
    run, seen = tmp_path / "run", []

    def progress(event):
        seen.append(event.step)
        if len(seen) == 3:  # Ctrl-C while the next step runs
            threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT)).start()

    options = {**FAST, "steps": 100000}
    with pytest.raises(KeyboardInterrupt):
        p2p.train(source, target, checkpoint_dir=run, progress=progress, **options)
    kept = load_checkpoint(run)
    # the step under way when the signal came is finished, then the run stops
    assert kept.step == kept.history.steps_done in (seen[-1], seen[-1] + 1)
    resumed = p2p.train(source, target, resume=run, time_budget=1.0)
    done = resumed.history.steps_done
    assert done > kept.step
    # every 100th step, then about every 0.5 s (a time budget), none lost or twice
    logged_steps = resumed.history.losses["step"]
    assert kept.step in logged_steps and logged_steps[-1] == done
    assert logged_steps == sorted(set(logged_steps)) and logged_steps[-2] > kept.step


def test_resume_goes_on_only_on_the_data_it_was_trained_on(pair, tmp_path):
    """A resumed run keeps its normalization: on a target 50x brighter its predictions
    would clip at 2 % of the range. Other data is refused, naming what differs, unless
    the user asks for it (resume_other_data=True, which the run's warnings repeat)."""
    source, target = pair
    run = tmp_path / "run"
    p2p.train(source, target, checkpoint_dir=run, **FAST)
    brighter = target.astype("float32") * 50
    with pytest.raises(p2p.InputError, match="target normalization .*resume_other_data=True"):
        p2p.train(source, brighter, resume=run, time_budget=1.0)
    with pytest.raises(p2p.InputError, match=r"source shapes \(64, 128\) now vs \(128, 128\)"):
        p2p.train(source[:64], target[:64], resume=run, time_budget=1.0)
    events = list(
        p2p.train_iter(source, brighter, resume=run, time_budget=1.0, resume_other_data=True)
    )
    said = [e.message for e in events if isinstance(e, p2p.WarningEvent)]
    assert any("other images than the run's, as asked" in m for m in said), said
    assert events[-1].model.history.steps_done > 2
    # the run now records the images it went on with: those again need no flag
    resumed = p2p.train(source, brighter, resume=run, time_budget=1.0)
    assert resumed.history.steps_done > events[-1].model.history.steps_done


def test_a_script_hears_what_a_resumed_run_does_not_use(pair, tmp_path):
    """train() without progress= still tells a script what it should know (as Python
    warnings): options a resumed run does not use, fewer steps among them."""
    source, target = pair
    run = tmp_path / "run"
    p2p.train(source, target, checkpoint_dir=run, **{**FAST, "steps": 4})
    with pytest.warns(UserWarning, match=r"steps=3 \(the run's: 4.*lr=0\.5") as said:
        model = p2p.train(source, target, resume=run, steps=3, lr=0.5)
    assert len(said) == 1
    assert model.history.steps_done == 4 and model.config.lr != 0.5


def test_cuda_random_states_come_back_in_device_order(pair, tmp_path):
    """A checkpoint from a machine with 12 GPUs keeps device 10's state after device 9's
    (a text sort put it after device 1), so a resume gives each device its own."""
    source, target = pair
    p2p.train(source, target, checkpoint_dir=tmp_path / "a", **FAST)
    ckpt = load_checkpoint(tmp_path / "a")
    states = [torch.full((16,), i, dtype=torch.uint8) for i in range(12)]
    trainer_state = {**ckpt.trainer, "rng_cuda": states}
    save_checkpoint(
        tmp_path / "b",
        config=ckpt.config,
        step=ckpt.step,
        history=ckpt.history,
        trainer_state=trainer_state,
        sampler_state=ckpt.sampler,
    )
    back = load_checkpoint(tmp_path / "b").trainer["rng_cuda"]
    assert [int(s[0]) for s in back] == list(range(12))


def test_resume_without_its_checkpoint_points_at_the_runs_model(pair, tmp_path):
    source, target = pair
    run = tmp_path / "run"
    p2p.train(source, target, checkpoint_dir=run, **{**FAST, "val_fraction": 0.25})
    (run / "checkpoint.safetensors").unlink()
    with pytest.raises(p2p.ModelFileError, match="init_model=.*best.safetensors"):
        p2p.train(source, target, resume=run)
