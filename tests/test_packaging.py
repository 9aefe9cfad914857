"""The lean install: the wheel, installed without extras into a fresh venv, is the library
for headless servers. It imports without napari or Qt, napari is not installed, and the
command line trains and predicts.

Needs the package registry (the wheel's dependencies, and the build requirements); skipped
only when the registry cannot be reached. torch==2.13.0 (the CPU build where it lies on
local disk) is installed before the wheel, so that its dependency on torch does not pull
in another build."""

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import napari_pix2pix as p2p
from napari_pix2pix.engine.sample_data import make_pair

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"
GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui")
# what goes into the wheel: the project's metadata, its readme and licence, and src/
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "src")


def _run(cmd, timeout=900, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    env.pop("PYTHONPATH", None)
    # the lean venv is installed without bytecode (--no-compile): its first imports write it
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )


def _index_url() -> str:
    """The index pip uses (its configuration, else PyPI)."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        listing = _run([sys.executable, "-m", "pip", "config", "list"], timeout=60).stdout
        for line in listing.splitlines():
            key, _, value = line.partition("=")
            if key.endswith(".index-url"):
                url = value.strip().strip("'\"")
    return (url or "https://pypi.org/simple").rstrip("/") + "/"


def _registry_unreachable() -> str | None:
    """Why the package index cannot be reached, or None when it can."""
    url = _index_url() + "pip/"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            response.read(1)
    except Exception as error:  # any failure to reach it: DNS, refused, timeout, HTTP error
        return f"package registry {url} cannot be reached ({error})"
    return None


def _must(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    """``result`` succeeded; a failure where the registry cannot be reached skips."""
    if result.returncode != 0:
        reason = _registry_unreachable()
        if reason:
            pytest.skip(f"{what}: {reason}")
        pytest.fail(f"{what} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def _build_wheel(dest: Path, work: Path) -> Path:
    """Build the wheel from a copy of the sources, so that no build/ or *.egg-info lands
    in the checkout."""
    tree = work / "tree"
    tree.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, tree / name)
    if find_spec("build") is not None:
        cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", dest, tree]
    else:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dest, tree]
    _must(_run(cmd), "building the wheel")
    (wheel,) = dest.glob("napari_pix2pix-*.whl")
    return wheel


@pytest.fixture(scope="module")
def lean(tmp_path_factory):
    """A fresh venv with torch==2.13.0 and then the wheel, without extras."""
    work = tmp_path_factory.mktemp("lean")
    wheel = _build_wheel(work / "dist", work)
    venv = work / "venv"
    # no pip inside: this interpreter's pip installs into it (--python), which saves
    # creating one, and no compiling of every installed module to bytecode
    _must(_run([sys.executable, "-m", "venv", "--without-pip", venv]), "creating the venv")
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-compile"]
    _must(_run([*pip, TORCH]), f"installing {TORCH}")
    _must(_run([*pip, wheel]), f"installing {wheel.name}")
    return SimpleNamespace(python=python, bin=venv / "bin", work=work, venv=venv)


def test_lean_import_pulls_no_gui_and_napari_is_not_installed(lean):
    code = (
        "import importlib.util, json, sys\n"
        "import napari_pix2pix\n"
        f"gui = {GUI_MODULES!r}\n"
        "print(json.dumps({\n"
        "    'file': napari_pix2pix.__file__,\n"
        "    'loaded': sorted(m for m in sys.modules if m.split('.')[0] in gui),\n"
        "    'installed': [m for m in gui if importlib.util.find_spec(m) is not None],\n"
        "}))\n"
    )
    result = _run([lean.python, "-c", code], cwd=lean.work, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    # the installed wheel, not the checkout's sources
    assert Path(found["file"]).resolve().is_relative_to(lean.venv.resolve()), found["file"]
    assert found["loaded"] == [], f"import napari_pix2pix imported {found['loaded']}"
    assert found["installed"] == [], f"the lean install has {found['installed']}"
    dists = _run(
        [lean.python, "-c", "import importlib.metadata as m; print(m.version('napari'))"],
        timeout=120,
    )
    assert dists.returncode != 0 and "PackageNotFoundError" in dists.stderr, dists.stdout


def test_lean_cli_help(lean):
    result = _run([lean.bin / "napari-pix2pix", "--help"], cwd=lean.work, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "train" in result.stdout and "predict" in result.stdout


def test_lean_cli_trains_and_predicts(lean, tmp_path):
    source, target = make_pair((64, 64), seed=1, nucleus_radius=5.0)
    p2p.write_image(tmp_path / "source.tif", source, "YX")
    p2p.write_image(tmp_path / "target.tif", target, "YX")
    cli = lean.bin / "napari-pix2pix"
    model = tmp_path / "model.safetensors"
    train = [cli, "train", tmp_path / "source.tif", tmp_path / "target.tif", "-o", model]
    train += ["--steps", "2", "--patch-size", "32", "--depth", "4", "--base-channels", "8"]
    train += ["--disc-layers", "2", "--disc-channels", "8", "--device", "cpu"]
    train += ["--val-fraction", "0"]
    result = _run(train, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert model.is_file()
    out = tmp_path / "prediction.ome.tif"
    predict = [cli, "predict", model, tmp_path / "source.tif", "-o", out, "--device", "cpu"]
    result = _run(predict, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    image = p2p.read_image(out)
    assert image.array.shape == source.shape and image.axes == "YX"
    assert image.array.dtype == np.float32 and np.isfinite(image.array).all()
