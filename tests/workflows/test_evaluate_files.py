"""evaluate_files / `napari-pix2pix evaluate`: predictions on disk scored against their
targets without a model, checked against the metrics computed by hand (numpy, scipy)."""

import csv
import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import napari_pix2pix as p2p
from napari_pix2pix.cli import main


def by_hand(pred, target, mask, data_range):
    """MAE, PSNR, SSIM (Wang et al. 2004: 11 px Gaussian window, sigma 1.5, K1 0.01, K2
    0.03, averaged over the windows centred on masked pixels) and Pearson r, in float64."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    p, t = pred[mask], target[mask]
    mse = np.mean((p - t) ** 2)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    maps = []
    for x, y in zip(pred.reshape(-1, *pred.shape[-2:]), target.reshape(-1, *pred.shape[-2:])):
        f = lambda a: gaussian_filter(a, 1.5, truncate=3.5)  # noqa: E731 (radius 5: 11 px)
        mx, my = f(x), f(y)
        sxx, syy, sxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        s = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        maps.append(s[5:-5, 5:-5])
    centres = mask.reshape(-1, *mask.shape[-2:])[:, 5:-5, 5:-5]
    pc, tc = p - p.mean(), t - t.mean()
    return {
        "mae": np.abs(p - t).mean(),
        "psnr": 10 * np.log10(data_range**2 / mse),
        "ssim": np.stack(maps)[centres].mean(),
        "pearson_r": (pc * tc).sum() / np.sqrt((pc * pc).sum() * (tc * tc).sum()),
    }


@pytest.fixture
def stack(rng):
    """A 3-slice target in counts (offset 500, so SSIM's luminance term matters) and a
    prediction with blur and noise, as a model's would be."""
    target = 500 + 3000 * gaussian_filter(rng.random((3, 48, 56)), (0, 2, 2))
    pred = gaussian_filter(target, (0, 1, 1)) + rng.normal(0, 40, target.shape)
    return pred.astype(np.float32), target.astype(np.uint16)


def test_scores_match_the_metrics_by_hand_per_slice_and_per_image(stack, tmp_path):
    pred, target = stack
    mask = np.zeros(target.shape[1:], np.uint8)
    mask[8:40, 6:30] = 255  # a YX mask, for every slice
    p2p.write_image(tmp_path / "p.ome.tif", pred, "ZYX")
    p2p.write_image(tmp_path / "t.tif", target, "ZYX")
    p2p.write_image(tmp_path / "m.tif", mask, "YX")
    scores = p2p.evaluate_files(tmp_path / "p.ome.tif", tmp_path / "t.tif", tmp_path / "m.tif")
    rows = scores.rows
    assert [r["slice"] for r in rows] == ["Z=0", "Z=1", "Z=2", "all"]
    full = np.broadcast_to(mask != 0, target.shape)
    data_range = float(target[full].max()) - float(target[full].min())  # inside the mask
    expected = [by_hand(pred[z], target[z], full[z], data_range) for z in range(3)]
    expected.append(by_hand(pred, target, full, data_range))
    for row, want in zip(rows, expected):
        assert row["status"] == "ok" and row["data_range"] == pytest.approx(data_range)
        assert row["pixels"] == want_pixels(full, row["slice"])
        assert row["mae"] == pytest.approx(want["mae"], rel=1e-6)
        assert row["psnr"] == pytest.approx(want["psnr"], abs=1e-6)
        assert row["ssim"] == pytest.approx(want["ssim"], abs=2e-4)  # MONAI's map is float32
        assert row["pearson_r"] == pytest.approx(want["pearson_r"], abs=1e-9)
    assert scores.mean == pytest.approx({k: rows[-1][k] for k in scores.mean})
    # one value for all images: PSNR moves by 20 log10 of the ratio, SSIM's constants too
    wide = p2p.evaluate_files(tmp_path / "p.ome.tif", tmp_path / "t.tif", data_range=10000.0)
    whole = by_hand(pred, target, np.ones(target.shape, bool), 10000.0)
    assert wide.images[0]["psnr"] == pytest.approx(whole["psnr"], abs=1e-6)
    assert wide.images[0]["ssim"] == pytest.approx(whole["ssim"], abs=2e-4)


def want_pixels(full, label):
    return int(full.sum()) if label == "all" else int(full[int(label[2:])].sum())


def test_folders_pair_by_name_and_every_problem_is_a_failed_row(stack, tmp_path):
    pred, target = stack
    preds, targets, masks = (tmp_path / d for d in ("pred", "tgt", "masks"))
    for d in (preds, targets, masks):
        d.mkdir()
    p2p.write_image(preds / "good_pix2pix.ome.tif", pred[0], "YX")  # the suffix is removed
    p2p.write_image(targets / "good.tif", target[0], "YX")
    p2p.write_image(preds / "small.tif", pred[0, :40], "YX")
    p2p.write_image(targets / "small.tif", target[0], "YX")
    nan = pred[0].copy()
    nan[3, 4] = np.nan
    p2p.write_image(preds / "nan.tif", nan, "YX")
    p2p.write_image(targets / "nan.tif", target[0], "YX")
    p2p.write_image(preds / "flat.tif", pred[0], "YX")
    p2p.write_image(targets / "flat.tif", np.full_like(target[0], 7), "YX")
    p2p.write_image(preds / "orphan.tif", pred[0], "YX")
    p2p.write_image(targets / "lonely.tif", target[0], "YX")
    p2p.write_image(preds / "hollow.tif", pred, "ZYX")
    p2p.write_image(targets / "hollow.tif", target, "ZYX")
    empty = np.zeros(target.shape, np.uint8)
    empty[0, 10:30, 10:30] = 1  # slices 1 and 2 have no masked pixel
    p2p.write_image(masks / "hollow.tif", empty, "ZYX")
    p2p.write_image(masks / "good.tif", np.ones(target.shape[1:], np.uint8), "YX")
    p2p.write_image(masks / "small.tif", np.ones(target.shape[1:], np.uint8), "YX")
    p2p.write_image(masks / "nan.tif", np.ones(target.shape[1:], np.uint8), "YX")
    p2p.write_image(masks / "flat.tif", np.zeros(target.shape[1:], np.uint8), "YX")
    p2p.write_image(preds / "nanmask_pix2pix.ome.tif", target, "ZYX")
    p2p.write_image(targets / "nanmask.tif", target, "ZYX")
    p2p.write_image(masks / "nanmask.tif", np.full(target.shape[1:], np.nan, np.float32), "YX")

    scores = p2p.evaluate_files(preds, targets, masks, out=tmp_path / "scores.csv")
    images = {
        r["target"].split("/")[-1] or r["prediction"].split("/")[-1]: r for r in scores.images
    }
    assert images["good.tif"]["status"] == "ok"
    assert images["good.tif"]["prediction"].endswith("good_pix2pix.ome.tif")
    reasons = {name: r["reason"] for name, r in images.items() if r["status"] == "failed"}
    assert "(40, 56) differs from the target's (48, 56)" in reasons["small.tif"]
    assert "NaN" in reasons["nan.tif"]
    assert "no nonzero pixel" in reasons["flat.tif"]  # its mask is empty
    assert "mask holds NaN" in reasons["nanmask.tif"]  # not "nonzero", so not all scored
    assert "no target" in reasons["orphan.tif"] and "no prediction" in reasons["lonely.tif"]
    assert images["hollow.tif"]["status"] == "ok" and images["hollow.tif"]["pixels"] == 400
    hollow = [r for r in scores.rows if r["target"].endswith("hollow.tif")]
    assert [r["status"] for r in hollow] == ["ok", "empty", "empty", "ok"]
    # a constant target has no range of its own: refused, unless one is given
    flat = p2p.evaluate_files(preds / "flat.tif", targets / "flat.tif")
    assert "constant" in flat.rows[0]["reason"] and "data_range" in flat.rows[0]["reason"]
    given = p2p.evaluate_files(preds / "flat.tif", targets / "flat.tif", data_range=4000)
    assert given.rows[0]["status"] == "ok" and np.isnan(given.rows[0]["pearson_r"])

    with open(tmp_path / "scores.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(scores.rows)
    good = next(r for r in table if r["target"].endswith("good.tif"))
    assert float(good["mae"]) == pytest.approx(images["good.tif"]["mae"])
    assert next(r for r in table if r["status"] == "failed")["mae"] == ""
    document = json.loads((tmp_path / "scores.json").read_text())
    assert document["failed"] == 6 and document["images"] == 8
    assert document["mean"]["mae"] == pytest.approx(scores.mean["mae"])
    failed = next(r for r in document["rows"] if r["status"] == "failed")
    assert failed["mae"] is None  # not NaN: the file is strict JSON


def test_results_are_never_written_over_a_users_file(stack, tmp_path):
    pred, target = stack
    p2p.write_image(tmp_path / "p.tif", pred, "ZYX")
    p2p.write_image(tmp_path / "t.tif", target, "ZYX")
    args = (tmp_path / "p.tif", tmp_path / "t.tif")
    p2p.evaluate_files(*args, out=tmp_path / "r.json")
    assert (tmp_path / "r.csv").exists() and (tmp_path / "r.json").exists()
    with pytest.raises(p2p.InputError, match="exists"):
        p2p.evaluate_files(*args, out=tmp_path / "r.csv")
    p2p.evaluate_files(*args, out=tmp_path / "r.csv", overwrite=True)  # its own results
    (tmp_path / "mine.csv").write_text("my,own,table\n")
    with pytest.raises(p2p.InputError, match="not written by napari-pix2pix"):
        p2p.evaluate_files(*args, out=tmp_path / "mine.csv", overwrite=True)
    assert (tmp_path / "mine.csv").read_text() == "my,own,table\n"
    assert not (tmp_path / "mine.json").exists()  # refused before anything was written
    with pytest.raises(p2p.InputError, match=r"\.csv or \.json"):
        p2p.evaluate_files(*args, out=tmp_path / "r.txt")
    with pytest.raises(p2p.InputError, match="two files, two folders"):
        p2p.evaluate_files(tmp_path, tmp_path / "t.tif")


def test_nothing_to_pair_is_one_error_before_anything_is_read(stack, tmp_path):
    """A wrong suffix pairs no file: one error naming the rule, not a failure a file."""
    pred, target = stack
    preds, targets, empty = (tmp_path / d for d in ("pred", "tgt", "empty"))
    for d in (preds, targets, empty):
        d.mkdir()
    p2p.write_image(preds / "a_predicted.tif", pred[0], "YX")
    p2p.write_image(targets / "a.tif", target[0], "YX")
    with pytest.raises(p2p.InputError, match="is named like a target.*suffix"):
        p2p.evaluate_files(preds, targets, out=tmp_path / "r.csv")
    assert not (tmp_path / "r.csv").exists()
    assert p2p.evaluate_files(preds, targets, suffix="_predicted").mean["mae"] > 0
    with pytest.raises(p2p.InputError, match="'.*empty' holds no image files"):
        p2p.evaluate_files(preds, empty)
    with pytest.raises(p2p.InputError, match="no predictions given"):
        p2p.evaluate_files([], [])


def test_the_command_line_prints_and_writes_the_scores(stack, tmp_path, capsys):
    pred, target = stack
    (tmp_path / "pred").mkdir()
    (tmp_path / "tgt").mkdir()
    p2p.write_image(tmp_path / "pred" / "a_pix2pix.tif", pred, "ZYX")
    p2p.write_image(tmp_path / "tgt" / "a.tif", target, "ZYX")
    out = tmp_path / "scores.csv"
    argv = ["evaluate", str(tmp_path / "pred"), str(tmp_path / "tgt"), "-o", str(out)]
    assert main([*argv, "--data-range", "4000"]) == 0
    printed = capsys.readouterr().out
    assert "a_pix2pix.tif: MAE" in printed and "mean over 1 scored" in printed
    api = p2p.evaluate_files(tmp_path / "pred", tmp_path / "tgt", data_range=4000)
    with open(out, newline="") as fh:
        assert float(list(csv.DictReader(fh))[-1]["psnr"]) == pytest.approx(api.mean["psnr"])
    p2p.write_image(tmp_path / "tgt" / "b.tif", target, "ZYX")  # no prediction for it
    assert main([*argv, "--overwrite"]) == 1
    assert "failed: b.tif (no prediction" in capsys.readouterr().out
    assert main([*argv]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err
