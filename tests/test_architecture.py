"""The architecture holds (pyproject.toml's import-linter contracts): each layer imports
only those below it, no import cycles at any depth (function-level imports count), and
napari and Qt only on the napari side. Planted violations show that the check bites."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    """lint-imports on ``project`` (a folder with pyproject.toml and src/)."""
    env = {"PYTHONPATH": str(project / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=project, env=env, capture_output=True, text=True
    )


def test_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 kept, 0 broken" in result.stdout


def test_nothing_inside_imports_the_top_level_package():
    """The top-level package imports every layer, so importing it from inside one is a
    cycle through the back door."""
    graph = grimp.build_graph("napari_pix2pix")
    assert graph.find_modules_that_directly_import("napari_pix2pix") == set()


@pytest.mark.parametrize(
    "module, planted, broken",
    [
        ("engine/axes.py", "from ..plugin import layers", "Layers"),  # engine -> napari side
        ("io/tiff.py", "from ..workflows import prediction", "Layers"),  # io -> workflows
        ("engine/losses.py", "from . import trainer", "No import cycles"),  # losses <-> trainer
        ("workflows/export.py", "import qtpy", "Only the napari side"),
    ],
)
def test_a_planted_violation_breaks_a_contract(tmp_path, module, planted, broken):
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "src" / "napari_pix2pix" / module
    # inside a function, where such imports hide
    target.write_text(target.read_text() + f"\n\ndef _planted():\n    {planted}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout, result.stdout[-3000:]
