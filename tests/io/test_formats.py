"""One table of formats (io/formats.py): napari's manifest, the reader offer, folders of
training pairs, read_image, predict's outputs and the docs all follow it. Before the
table, .mha/.nrrd were read but not matched in folders nor offered to napari."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import napari_pix2pix as p2p
from napari_pix2pix.io.datasets import image_files, match_folders
from napari_pix2pix.io.formats import FORMATS, format_of, image_stem, napari_patterns, suffixes
from napari_pix2pix.io.outputs import check_output
from napari_pix2pix.plugin.reader import napari_get_reader

ROOT = Path(__file__).resolve().parents[2]


def _reader(manifest_path=ROOT / "src" / "napari_pix2pix" / "plugin" / "napari.yaml"):
    manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    return manifest["contributions"]["readers"][0]


def test_napari_yaml_reader_is_the_table():
    reader = _reader()
    assert reader["filename_patterns"] == list(napari_patterns())
    assert reader["accepts_directories"] is True  # zarr stores are folders
    assert set(napari_patterns(installed=True)) <= set(napari_patterns())


def test_every_readable_ending_is_matched_by_napari_and_in_folders(tmp_path):
    from fnmatch import fnmatchcase

    for fmt in FORMATS:
        for suffix in fmt.suffixes:
            name = f"a{suffix}"
            assert format_of(name) is fmt and format_of(name.upper()) is fmt
            assert image_stem(name) == "a"
            for case in (name, f"a{suffix.upper()}"):
                assert any(fnmatchcase(case, p) for p in napari_patterns()), case
            (tmp_path / name).mkdir() if fmt.folder else (tmp_path / name).write_bytes(b"")
    assert {p.name for p in image_files(tmp_path)} == {f"a{s}" for s in suffixes()}


def test_folders_pair_mha_and_nrrd_by_name(tmp_path):
    for side in ("mr", "ct"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "p1.mha").write_bytes(b"")
        (tmp_path / side / "p2.nrrd").write_bytes(b"")
    (tmp_path / "mr" / "notes.txt").write_text("not an image")
    (tmp_path / "mr" / "file.zarr").write_bytes(b"")  # a file named like a store
    pairs = match_folders(tmp_path / "mr", tmp_path / "ct")
    assert [(s.name, t.name) for s, t in pairs] == [("p1.mha", "p1.mha"), ("p2.nrrd", "p2.nrrd")]


def test_the_longest_ending_decides():
    assert format_of("a.ome.zarr").name.startswith("OME-Zarr")
    assert format_of("a.zarr/").name == "zarr"
    assert format_of("a.nii.gz").name == "NIfTI" and format_of("a.tif.bak") is None
    assert image_stem("x.ome.tiff") == "x" and image_stem(".tif") is None


def test_the_napari_reader_claims_the_table_and_says_what_is_missing(tmp_path):
    (tmp_path / "v.mha").write_bytes(b"ObjectType = Image\n")
    (tmp_path / "s.zarr").mkdir()
    (tmp_path / "t.tif").mkdir()  # a folder named like a file: not ours
    assert napari_get_reader(str(tmp_path / "v.mha")) is not None
    assert napari_get_reader(str(tmp_path / "s.zarr")) is not None
    assert napari_get_reader(str(tmp_path / "t.tif")) is None
    assert napari_get_reader(str(tmp_path / "x.png")) is None
    try:
        import itk  # noqa: F401
    except ImportError:
        with pytest.raises(p2p.ImageFileError, match="pip install itk"):
            napari_get_reader(str(tmp_path / "v.mha"))(str(tmp_path / "v.mha"))


def test_read_parameters_belong_to_their_formats(tmp_path):
    path = p2p.write_image(tmp_path / "a.tif", np.zeros((8, 8), np.uint8), "YX")
    with pytest.raises(p2p.ImageFileError, match="level= is for OME-Zarr"):
        p2p.read_image(path, level=1)
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(p2p.ImageFileError, match="not a TIFF file.*\\.ome\\.zarr"):
        p2p.read_image(tmp_path / "a.png")


def test_outputs_follow_the_table(tmp_path):
    with pytest.raises(p2p.InputError, match="out must end in .tif, .tiff, .*\\.ome\\.zarr"):
        check_output(tmp_path / "x.png", None, "")
    with pytest.raises(p2p.InputError, match="resuming needs a .zarr or .ome.zarr output"):
        check_output(tmp_path / "x.nii", None, "", if_exists="resume")
    check_output(tmp_path / "x.ome.zarr", None, "", if_exists="resume")  # nothing yet: fine


def test_docs_formats_md_is_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_formats.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_nothing_is_written_inside_another_store(tmp_path):
    (tmp_path / "s.zarr").mkdir()
    with pytest.raises(p2p.InputError, match="out must end in"):
        check_output(tmp_path / "s.zarr" / "x.png", None, "")
