"""Many pairs, read from disk: folders paired by name, crops read lazily with bounded
memory, the normalization fitted on every pair, validation pairs chosen or held out
whole, and augmentations that keep pairs aligned and resume exactly."""

import json
import tracemalloc

import numpy as np
import pytest
import torch

import napari_pix2pix as p2p
from napari_pix2pix import write_image
from napari_pix2pix.cli import main
from napari_pix2pix.engine.augment import Augmentations
from napari_pix2pix.engine.axes import AxesLayout
from napari_pix2pix.engine.lazy import LazySample
from napari_pix2pix.engine.normalization import Normalization, lazy_budget
from napari_pix2pix.engine.recipes import preset_options
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.engine.sampling import PairedPatchSampler
from napari_pix2pix.io import datasets

FAST = dict(steps=2, seed=0, val_fraction=0)


def write_pairs(folder, pairs, target_names=None):
    """Source and target TIFFs under folder/source and folder/target."""
    (folder / "source").mkdir(parents=True, exist_ok=True)
    (folder / "target").mkdir(parents=True, exist_ok=True)
    for i, (s, t) in enumerate(pairs):
        name = f"img{i:02d}.tif"
        write_image(folder / "source" / name, s, "YX")
        write_image(folder / "target" / (target_names[i] if target_names else name), t, "YX")
    return folder / "source", folder / "target"


@pytest.fixture(scope="module")
def pairs():
    return [make_pair((96, 96), seed=i, nucleus_radius=5.0) for i in range(3)]


def test_folders_pair_by_name_and_train(pairs, tmp_path, tiny):
    # the same stem with another image ending pairs up; hidden and other files are ignored
    src, tgt = write_pairs(tmp_path, pairs, ["img00.ome.tif", "img01.tiff", "img02.tif"])
    (src / ".img03.tif").write_bytes(b"not an image")
    (tgt / "notes.txt").write_text("not an image")
    model = p2p.train(src, tgt, axes="YX", steps=2, seed=0, val_fraction=0.34, **tiny)
    assert model.history.train_pairs == ["img00.tif | img00.ome.tif", "img01.tif | img01.tiff"]
    assert model.history.val_pairs == ["img02.tif"]
    assert model.history.split.startswith("last 1 of 3 pairs held out")
    assert len(model.history.validation) >= 1


def test_unmatched_files_are_named_on_both_sides(pairs, tmp_path):
    s, t = pairs[0]
    src, tgt = write_pairs(tmp_path, [(s, t)] * 2)
    write_image(src / "only_source.tif", s, "YX")
    write_image(tgt / "only_target.tif", t, "YX")
    with pytest.raises(p2p.InputError) as info:
        p2p.train(src, tgt, **FAST)
    message = str(info.value)
    assert "only_source.tif" in message and "only_target.tif" in message
    assert "img00" not in message
    for i in range(12):  # long lists are cut, saying how many more
        write_image(src / f"extra{i:02d}.tif", s, "YX")
    with pytest.raises(p2p.InputError, match=r"extra09.tif and 3 more"):
        p2p.train(src, tgt, **FAST)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(p2p.InputError, match="holds no image files"):
        p2p.train(empty, tgt, **FAST)


def test_training_memory_does_not_grow_with_the_dataset(tmp_path, tiny, monkeypatch):
    # the memory cap of this test: datasets beyond it are read crop by crop
    monkeypatch.setattr(datasets, "EAGER_BYTES", 8 * 2**20)
    rng = np.random.default_rng(0)
    shape, count = (512, 512), 40
    source_dir, target_dir = tmp_path / "s", tmp_path / "t"
    source_dir.mkdir()
    target_dir.mkdir()
    for i in range(count):
        image = rng.integers(0, 4000, shape, dtype=np.uint16)
        write_image(source_dir / f"{i}.tif", image, "YX")
        write_image(target_dir / f"{i}.tif", image // 2, "YX")
    decoded = 2 * count * image.nbytes  # 40 MiB
    tracemalloc.start()
    try:
        model = p2p.train(source_dir, target_dir, steps=4, seed=0, val_fraction=0, **tiny)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"\npeak traced memory {peak / 2**20:.1f} MiB for {decoded / 2**20:.0f} MiB of images")
    assert model.history.steps_done == 4
    # a fixed cap (the normalization's bounded sample, one file's reads, the crops),
    # less than half of the images: the old eager reading needed all of them at once
    assert peak < min(16 * 2**20, decoded / 2)


def test_normalization_is_fitted_over_every_pair(tmp_path, tiny):
    rng = np.random.default_rng(0)
    target = make_pair((64, 64), seed=1)[1]
    scaled = [  # one dim pair, one bright pair
        (rng.uniform(0, 100, (64, 64)).astype(np.float32), target),
        (rng.uniform(5000, 6000, (64, 64)).astype(np.float32), target),
    ]
    src, tgt = write_pairs(tmp_path, scaled)
    model = p2p.train(src, tgt, **FAST, **tiny)
    assert model.config.source_low[0] < 100 and model.config.source_high[0] > 5000


def test_normalization_reads_a_bounded_sample_of_a_lazy_image():
    reads = []

    class Counting:
        def __init__(self, array):
            self.array, self.shape, self.dtype = array, array.shape, array.dtype

        def __getitem__(self, index):
            block = self.array[index]
            reads.append(block.size)
            return block

    big = np.arange(2048 * 2048, dtype=np.float32).reshape(2048, 2048)
    sample = LazySample(Counting(big), AxesLayout("YX", big.shape, 2), 0)
    norm = Normalization.fit([sample], (0.5, 99.5), "source")
    assert 0 < sum(reads) <= lazy_budget(1) < big.size
    # the grid of boxes covers the whole range of values
    assert norm.low[0] < 0.05 * big.size and norm.high[0] > 0.95 * big.size


def test_validation_pairs_given_or_held_out_whole(pairs, tmp_path, tiny):
    (s0, t0), (s1, t1), (s2, t2) = pairs
    model = p2p.train([s0, s1], [t0, t1], val_source=s2, val_target=t2, steps=2, seed=0, **tiny)
    assert model.history.train_pairs == ["array 0", "array 1"]
    assert model.history.val_pairs == ["array"]
    assert model.history.split.startswith("validation pairs given")
    assert len(model.history.validation) >= 1
    # without: whole pairs held out, the last ones
    sources, targets = [s0, s1, s2, s0.T], [t0, t1, t2, t0.T]
    model = p2p.train(sources, targets, steps=2, seed=0, val_fraction=0.25, **tiny)
    assert model.history.val_pairs == ["array 3"]
    assert model.history.train_pairs == ["array 0", "array 1", "array 2"]
    with pytest.raises(p2p.InputError, match="both val_source and val_target"):
        p2p.train(s0, t0, val_source=s2, **FAST, **tiny)


@pytest.mark.parametrize("kind", ["zoom", "elastic"])
def test_spatial_augmentations_keep_pairs_aligned(kind):
    image = make_pair((96, 96), seed=4)[0][None].astype(np.float32)
    augment = Augmentations(**{kind: 1.0})
    plain = PairedPatchSampler([(image, image.copy())], (32, 32), seed=0)
    changed = PairedPatchSampler([(image, image.copy())], (32, 32), seed=0, augment=augment)
    for _ in range(3):
        source, target = changed.batch(4)
        assert torch.equal(source, target)  # the same transform on both
        assert not torch.equal(source, plain.batch(4)[0])  # and it did something


@pytest.mark.parametrize("kind", ["intensity", "gamma"])
def test_intensity_augmentations_change_the_source_only(kind):
    source, target = (a[None].astype(np.float32) for a in make_pair((96, 96), seed=4))
    plain = PairedPatchSampler([(source, target)], (32, 32), seed=0)
    changed = PairedPatchSampler(
        [(source, target)], (32, 32), seed=0, augment=Augmentations(**{kind: 1.0})
    )
    for _ in range(3):
        (s0, t0), (s1, t1) = plain.batch(4), changed.batch(4)
        assert torch.equal(t0, t1) and not torch.equal(s0, s1)


@pytest.mark.parametrize("preset", ["auto", "paper"])
def test_default_augmentations_keep_a_quantitative_mapping(preset):
    """Where the target is a fixed function of the source (MR -> CT, a calibrated stain),
    no default augmentation may change one without the other: in every default crop an
    affine source -> target mapping holds exactly, with one slope for all crops."""
    source = make_pair((96, 96), seed=4)[0][None].astype(np.float32)
    target = 3.0 * source + 100.0
    config = p2p.Pix2PixConfig()  # the recipes set the network, never augmentations
    assert (
        preset_options(preset, {}, 2)
        .keys()
        .isdisjoint(f for f in vars(config) if f.startswith("augment_"))
    )
    sampler = PairedPatchSampler(
        [(source, target)], (32, 32), seed=0, augment=Augmentations.of(config)
    )
    slopes = []
    for _ in range(4):
        src, tgt = (t.numpy().ravel().astype(np.float64) for t in sampler.batch(4))
        slope, offset = np.polyfit(src, tgt, 1)
        assert np.abs(tgt - (slope * src + offset)).max() < 1e-3 * np.ptp(tgt)
        slopes.append(slope)
    assert np.ptp(slopes) < 1e-6


def test_sampler_with_augmentations_resumes_exactly():
    source, target = (a[None].astype(np.float32) for a in make_pair((96, 96), seed=4))
    augment = Augmentations(0.5, 0.5, 0.5, 0.5)

    def sampler():
        return PairedPatchSampler([(source, target)], (32, 32), 0, 0.5, augment=augment)

    first = sampler()
    for _ in range(3):
        first.batch(4)
    state = json.loads(json.dumps(first.state()))  # as a checkpoint stores it
    expected = [first.batch(4) for _ in range(3)]
    second = sampler()
    second.set_state(state)
    for (s0, t0), (s1, t1) in zip(expected, (second.batch(4) for _ in range(3))):
        assert torch.equal(s0, s1) and torch.equal(t0, t1)


def test_training_with_augmentations_resumes_to_the_same_weights(pair, tmp_path, tiny):
    source, target = pair
    options = dict(
        steps=8,
        seed=0,
        val_fraction=0,
        augment_intensity=0.5,
        augment_gamma=0.5,
        augment_zoom=0.5,
        augment_elastic=0.5,
        **tiny,
    )
    events = p2p.train_iter(source, target, checkpoint_dir=tmp_path, **options)
    for event in events:
        if event.step == 4:
            break
    events.close()
    resumed = p2p.train(source, target, resume=tmp_path, **options)
    full = p2p.train(source, target, **options)
    w_resumed, w_full = resumed.generator.state_dict(), full.generator.state_dict()
    assert all(torch.allclose(w_resumed[k].float(), w_full[k].float(), atol=1e-6) for k in w_full)


def test_cli_trains_from_two_folders(pairs, tmp_path, capsys):
    src, tgt = write_pairs(tmp_path / "train", pairs[:2])
    val_src, val_tgt = write_pairs(tmp_path / "val", pairs[2:])
    out = tmp_path / "m.safetensors"
    tiny = ["--patch-size", "32", "--depth", "4", "--base-channels", "8", "--batch-size", "2"]
    tiny += ["--disc-layers", "2", "--disc-channels", "8", "--device", "cpu", "--steps", "2"]
    code = main(
        ["train", str(src), str(tgt), "-o", str(out), *tiny]
        + ["--val-source", str(val_src), "--val-target", str(val_tgt)]
    )
    assert code == 0, capsys.readouterr().err
    model = p2p.load_model(out)
    assert model.history.train_pairs == ["img00.tif", "img01.tif"]
    assert model.history.val_pairs == ["img00.tif"]


def test_errors_about_a_folders_pairs_name_the_file(pairs, tmp_path, tiny):
    source_dir, target_dir = write_pairs(tmp_path, pairs[:2])
    (target_dir / "img01.tif").unlink()
    write_image(target_dir / "img01.tif", pairs[1][1][:80], "YX")  # cut short: misaligned
    with pytest.raises(p2p.InputError, match=r"source \('img01.tif'\) \(96, 96\).*not aligned"):
        p2p.train(source_dir, target_dir, **FAST, **tiny)


def test_the_same_folder_as_source_and_target_is_refused(pairs, tmp_path, tiny):
    source_dir, _ = write_pairs(tmp_path, pairs[:1])
    (tmp_path / "link").symlink_to(source_dir)
    for target in (source_dir, tmp_path / "link"):
        with pytest.raises(p2p.InputError, match="are the same folder, '.*source'"):
            p2p.train(source_dir, target, **FAST, **tiny)


def test_zarr_stores_in_folders_pair_up_and_train(pairs, tmp_path, tiny):
    """As docs/scripting.md says: a.zarr pairs with a.tif and is read chunk by chunk."""
    import zarr

    source_dir, target_dir = write_pairs(tmp_path, pairs[:2])
    for name in ("img00", "img01"):
        image = p2p.read_image(source_dir / f"{name}.tif").array
        (source_dir / f"{name}.tif").unlink()
        store = zarr.open_array(
            str(source_dir / f"{name}.zarr"), mode="w", shape=image.shape, dtype=image.dtype
        )
        store[:] = image
    model = p2p.train(source_dir, target_dir, axes="YX", **FAST, **tiny)
    assert model.history.train_pairs == ["img00.zarr | img00.tif", "img01.zarr | img01.tif"]
    assert p2p.predict(model, source_dir / "img00.zarr").shape == (96, 96)


def test_a_file_replaced_during_training_is_named(pairs, tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(datasets, "EAGER_BYTES", 0)  # read crop by crop, as large data is
    source_dir, target_dir = write_pairs(tmp_path, pairs[:2])
    events = p2p.train_iter(source_dir, target_dir, axes="YX", steps=200, seed=0, **tiny)
    next(events)
    for name in ("img00.tif", "img01.tif"):  # another experiment's images under that name
        (source_dir / name).unlink()
        write_image(source_dir / name, np.zeros((40, 50), np.uint16), "YX")
    with pytest.raises(p2p.ImageFileError, match=r"img0[01].tif' changed while training"):
        for _ in events:
            pass
