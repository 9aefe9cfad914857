"""Writes docs/options.md and docs/run_config.schema.json (the JSON Schema of run
configs, `--config`) from the option declarations in src/napari_pix2pix/config.py and
run_options.py, the one place where options are defined.

    python docs/make_options.py          # rewrite both
    python docs/make_options.py --check  # exit 1 if either is stale (CI)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.io.run_config_schema import run_config_schema
from napari_pix2pix.options import markdown_table
from napari_pix2pix.run_options import BatchOptions, PredictOptions, ScoringOptions, TrainingRun

PATH = Path(__file__).with_name("options.md")
SCHEMA_PATH = Path(__file__).with_name("run_config.schema.json")
SECTIONS = [
    (
        "Model and training recipe",
        "Saved in the model file (`model.config`). Keywords of `train` / `train_iter`, "
        "arguments of `napari-pix2pix train`, fields of the Train widget. A resumed run keeps "
        "its checkpoint's recipe (only `steps` can grow).",
        Pix2PixConfig,
    ),
    (
        "Training run",
        "How one run goes; not part of the model. Keywords of `train` / `train_iter`, "
        "arguments of `napari-pix2pix train`, fields of the Train widget (the Resume button "
        "for `resume`).",
        TrainingRun,
    ),
    (
        "Prediction",
        "Keywords of `predict` (and `predict_lazy`), arguments of `napari-pix2pix predict`, "
        "fields of the Predict widget.",
        PredictOptions,
    ),
    (
        "Several inputs",
        "Keywords of `predict_many`, arguments of `napari-pix2pix predict` given a folder, a "
        "glob or several images (with the prediction options above, the same for every file).",
        BatchOptions,
    ),
    (
        "Scoring files",
        "Keywords of `evaluate_files`, arguments of `napari-pix2pix evaluate`.",
        ScoringOptions,
    ),
]


def render() -> str:
    parts = [
        "# Options\n",
        "Every option napari-pix2pix takes, with its default, its allowed values and where "
        "it appears. This page is generated from the declarations in "
        "`src/napari_pix2pix/config.py` and `run_options.py` by `python docs/make_options.py`; "
        "the same declarations check the values, make the command line's arguments and the "
        "napari widgets' fields, so they cannot disagree. In the GUI, *with the inputs* means "
        "the axes fields beside the layer pickers (or a button); an option that may be None "
        "shows a tick box with what None means. The keywords are also the keys of a run "
        "config's `train:` and `predict:` sections (`--config FILE`, values in the units "
        "shown here; [scripting.md](scripting.md#run-configs-one-file-for-a-runs-options)), "
        "whose JSON Schema, [run_config.schema.json](run_config.schema.json), is generated "
        "with this page.\n",
    ]
    for title, intro, cls in SECTIONS:
        parts.append(f"## {title}\n\n{intro}\n\n{markdown_table(cls)}")
    return "\n".join(parts)


def render_schema() -> str:
    return json.dumps(run_config_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    pages = {PATH: render(), SCHEMA_PATH: render_schema()}
    if "--check" in argv:
        stale = [p for p, text in pages.items() if not p.exists() or p.read_text("utf-8") != text]
        for path in stale:
            print(f"{path} is stale: run python docs/make_options.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in pages.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
