"""predict's input check: a model trained here carries the profile of its training
inputs; an image like them predicts without a word, a shifted one warns (naming the
worst slice, the score and the threshold) and ``return_input_check`` hands the scores
back. A model without a profile (saved before profiles) predicts as before, with no
score and no warning."""

import warnings

import numpy as np
import pytest

import napari_pix2pix as p2p

SAID = "differs from what the model was trained on"


def _input_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if SAID in str(w.message)]


def test_a_shifted_slice_warns_and_a_like_one_does_not(trained, held_out_pair):
    source = held_out_pair[0]
    assert trained.input_profile is not None  # train made it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, check = p2p.predict(trained, source, device="cpu", return_input_check=True)
    assert not _input_warnings(caught) and not check.above, check.scores
    stack = np.stack([source, source.astype(np.float32) * 3, source])
    with pytest.warns(UserWarning, match=rf"{SAID} .*slice 1.*brighter") as caught:
        pred, axes, check = p2p.predict(
            trained, stack, axes="ZYX", device="cpu", return_axes=True, return_input_check=True
        )
    assert len(_input_warnings(caught)) == 1  # one message for the stack, the worst slice
    assert pred.shape == stack.shape and axes == "ZYX"
    assert check.worst == 1 and check.scores[0] < check.threshold < check.scores[1]
    # with the confidence map: the check comes last, after the spread and the axes
    with pytest.warns(UserWarning, match=SAID):
        *_, again = p2p.predict(
            trained, stack[:2], axes="ZYX", device="cpu", uncertainty=True, return_input_check=True
        )
    assert again.scores == pytest.approx(check.scores[:2])
    # a stack of several sample axes names the worst one by its place in each
    with pytest.warns(UserWarning, match=rf"{SAID} .*at T 1, Z 0: brighter"):
        p2p.predict(trained, stack[None, [0, 2]].repeat(2, 0) * [[[[1]]], [[[3]]]], axes="TZYX")


def test_a_model_without_a_profile_predicts_as_before(trained, held_out_pair, tmp_path):
    old = p2p.Pix2PixModel(trained.config, trained.generator, trained.history)
    path = old.save(tmp_path / "old.safetensors")
    loaded = p2p.load_model(path)
    assert loaded.input_profile is None
    assert any("input profile: absent" in line.lower() for line in loaded.card())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, check = p2p.predict(
            loaded, held_out_pair[0] * 3.0, device="cpu", return_input_check=True
        )
    assert check is None and not _input_warnings(caught)
