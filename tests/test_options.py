"""Options are declared once (config.py, run_options.py): every one reaches the command
line and the docs, its default passes its own checks, and a mistyped keyword is named.
(The widgets' forms: tests/plugin/test_option_forms.py.)"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import napari_pix2pix as p2p
from napari_pix2pix.cli import build_parser
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.options import options_of
from napari_pix2pix.run_options import PredictOptions, TrainingRun

ROOT = Path(__file__).resolve().parents[1]
ALL = [Pix2PixConfig, TrainingRun, PredictOptions]


def user_options(*classes, surface=None):
    return {
        o.keyword
        for cls in classes
        for o in options_of(cls)
        if o.spec.group != "internal" and (surface is None or surface in o.spec.surfaces)
    }


def cli_flags(command: str) -> set[str]:
    parser, _ = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {a.dest for a in sub._actions}


def test_every_option_is_on_the_command_line():
    assert user_options(Pix2PixConfig, TrainingRun, surface="cli") <= cli_flags("train")
    assert user_options(PredictOptions, surface="cli") <= cli_flags("predict")
    # options kept off the command line say why in their declaration (surfaces)
    assert user_options(PredictOptions) - user_options(PredictOptions, surface="cli") == {
        "uncertainty"
    }


def test_docs_options_page_is_generated_from_the_declarations():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_options.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    page = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    for keyword in user_options(*ALL):
        assert f"| `{keyword}` |" in page


@pytest.mark.parametrize("cls", ALL)
def test_defaults_pass_their_own_checks(cls):
    for o in options_of(cls):
        assert o.check(o.default) == o.default or o.kind == "size"
    cls()  # and together


def test_numpy_scalars_are_numbers_and_bad_values_are_named():
    config = Pix2PixConfig(steps=np.int64(5), lr=np.float32(1e-3), patch_size=np.int16(64), depth=6)
    assert config.steps == 5 and isinstance(config.steps, int) and config.patch_size == (64, 64)
    with pytest.raises(p2p.InputError, match="dropout must be at least 0 and below 1; got 1.5"):
        Pix2PixConfig(dropout=1.5)
    with pytest.raises(p2p.InputError, match="overlap has an invalid value 'a'"):
        PredictOptions(overlap="a")


def test_a_mistyped_keyword_is_named_with_the_fix(pair):
    source, target = pair
    with pytest.raises(p2p.InputError, match="train\\(\\) has no option 'step'.*'steps'"):
        p2p.train(source, target, step=5)
    with pytest.raises(p2p.InputError, match="predict\\(\\) has no option 'tile'"):
        p2p.predict("model.safetensors", source, tile=64)


def test_help_lists_the_options():
    for keyword in user_options(Pix2PixConfig, TrainingRun):
        assert f"    {keyword} (" in p2p.train.__doc__
    for keyword in user_options(PredictOptions):
        assert f"    {keyword} (" in p2p.predict.__doc__


def test_a_bound_is_said_in_words_with_its_unit(pair):
    """Once: 'must be in [1, 100000000]; none: no limit, got 0.5'."""
    with pytest.raises(p2p.InputError) as said:
        p2p.train(*pair, time_budget=0.5, steps=2, device="cpu")
    assert str(said.value) == (
        "time_budget must be between 1 and 100000000 seconds, or None for no limit; got 0.5."
    )


def _just_outside(o):
    """A value just outside an option's range (None where it has none to step out of)."""
    s = o.spec
    if s.low is not None:
        value = s.low if s.low_open else s.low - (1 if o.kind in ("int", "size") else 0.5)
    elif s.high is not None and not np.isinf(s.high):
        value = s.high if s.high_open else s.high + 1
    else:
        return None
    if o.kind == "pair":
        return (value, value)
    return [value] if o.kind == "floats" else value


@pytest.mark.parametrize("o", [o for cls in ALL for o in options_of(cls)], ids=lambda o: o.keyword)
def test_every_bound_message_reads_well_and_names_the_value(o):
    value = _just_outside(o)
    if value is None or o.kind == "str":
        return
    with pytest.raises(p2p.InputError) as said:
        o.check(value)
    message = str(said.value)
    assert message.startswith((o.keyword, f"each value of {o.keyword}")), message
    assert "[" not in message.split("got")[0] and "none:" not in message, message
    assert repr(value) in message or str(value) in message, message


def test_percentiles_given_as_fractions_are_refused_with_the_percent_values():
    """(0.005, 0.995) is legal arithmetic but surely meant (0.5, 99.5): it normalised by
    the lowest 1 % of values (validation PSNR -26 dB against +11 dB)."""
    with pytest.raises(p2p.InputError, match=r"give \(0\.5, 99\.5\)"):
        p2p.Pix2PixConfig(percentiles=(0.005, 0.995)).validate()
    p2p.Pix2PixConfig(percentiles=(0.5, 99.5)).validate()
