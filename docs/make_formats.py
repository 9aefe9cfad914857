"""Writes docs/formats.md from the table of formats in src/napari_pix2pix/io/formats.py,
the one place where formats are declared.

    python docs/make_formats.py          # rewrite docs/formats.md
    python docs/make_formats.py --check  # exit 1 if docs/formats.md is stale (CI)
"""

from __future__ import annotations

import sys
from pathlib import Path

from napari_pix2pix.io.formats import FORMATS, napari_patterns

PATH = Path(__file__).with_name("formats.md")


def _yes(value) -> str:
    return "yes" if value else ""


def render() -> str:
    rows = [
        "| Format | Endings | Read | Predict into | `write_image` | Needs | Notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in FORMATS:
        read = "yes" if f.read else ""
        if f.params:
            read += " (" + ", ".join(f"`{p}=`" for p in f.params) + ")"
        output = ""
        if f.output:
            output = (
                "yes, resumable" if f.resumable else "yes, held in memory" if f.in_memory else "yes"
            )
        rows.append(
            f"| {f.name} | {', '.join(f'`{s}`' for s in f.suffixes)} | {read} | {output} "
            f"| {_yes(f.write)} | {f'`{f.install}`' if f.install else ''} | {f.note} |"
        )
    return "\n".join(
        [
            "# Image formats\n",
            "Every format napari-pix2pix reads or writes. This page is generated from the "
            "table in `src/napari_pix2pix/io/formats.py` by `python docs/make_formats.py`; "
            "the same table decides what `read_image`, `train`/`predict` (paths and folders "
            "of pairs), the `out=` of `predict`, `write_image` and the napari reader accept, "
            "so they cannot disagree. Physical pixel sizes and units are kept by every reader "
            "and every output. *Read* lists the read parameters a format takes "
            "(`read_image(path, series=N)`: one image of a file of several; `level=N`: one "
            "resolution of an OME-Zarr pyramid, also `--series`/`--level` of `napari-pix2pix "
            "predict`). A prediction replaces an existing file only if napari-pix2pix "
            'predicted it and you ask (`if_exists="overwrite"`, `--overwrite`).\n',
            "\n".join(rows) + "\n",
            "The napari reader opens files (and store folders) named "
            + ", ".join(f"`{p}`" for p in napari_patterns())
            + "; a format whose library is missing opens with a message saying what to "
            "install.\n",
        ]
    )


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PATH.exists() or PATH.read_text(encoding="utf-8") != text:
            print(f"{PATH} is stale: run python docs/make_formats.py", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(text, encoding="utf-8")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
