"""Which files make which training pairs: a pair of folders matched by file name, lists
of paths or arrays, or one image each; and the images opened so that training reads
them box by box (TIFF files are opened for each read, so thousands of files hold no
file handles and no memory)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageFileError, InputError
from ..options import user_path
from .formats import format_of, image_stem, input_format_of, suffixes
from .images import ImageData, as_image
from .metadata import pixel_size
from .output_paths import check_input_path
from .tiff import FileArray

SHOWN_NAMES = 10  # unmatched names listed per side in the error
# TIFF training data up to this size (all files decoded) is read into memory, where it
# trains exactly like the same arrays; larger datasets are read crop by crop
EAGER_BYTES = 64 * 2**20


@dataclass
class PairInput:
    """One training pair as given: a path or array per side, and its name."""

    source: object
    target: object
    name: str


def image_files(folder: Path) -> list[Path]:
    """The image files of a folder (sorted by name): hidden files and files without the
    ending of a format napari-pix2pix reads (formats.py) are left out, and so are files
    named like a store and folders named like a file."""
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise InputError(
            f"cannot list the folder {str(folder)!r} ({exc.strerror or exc})."
        ) from exc
    return [p for p in entries if not p.name.startswith(".") and _is_image(p)]


def _is_image(path: Path) -> bool:
    fmt = format_of(path.name)
    return (
        fmt is not None
        and fmt.read is not None
        and (path.is_dir() if fmt.folder else path.is_file())
    )


def match_folders(source_dir: Path, target_dir: Path) -> list[tuple[Path, Path]]:
    """(source file, target file) for every pair of files with the same name, or the
    same name without the image ending ('a.tif' and 'a.ome.tiff'). Every file needs a
    partner: the ones without are named in the error, before any training starts."""
    sources, targets = image_files(source_dir), image_files(target_dir)
    for folder, files in ((source_dir, sources), (target_dir, targets)):
        if not files:
            raise InputError(
                f"the folder {str(folder)!r} holds no image files ({', '.join(suffixes())})."
            )
    by_name = {p.name: p for p in targets}
    by_stem = _by_stem(targets, target_dir)
    _by_stem(sources, source_dir)  # the same check on the source side
    pairs, unmatched, used = [], [], set()
    for s in sources:
        t = by_name.get(s.name) or by_stem.get(image_stem(s.name))
        if t is None or t.name in used:
            unmatched.append(s.name)
            continue
        used.add(t.name)
        pairs.append((s, t))
    lonely = [t.name for t in targets if t.name not in used]
    if unmatched or lonely:
        raise InputError(
            f"the files of {str(source_dir)!r} and {str(target_dir)!r} do not pair up by "
            "name (same name, or same name with another image ending): "
            + "; ".join(
                f"{len(names)} in {str(folder)!r} have no partner: {_names(names)}"
                for folder, names in ((source_dir, unmatched), (target_dir, lonely))
                if names
            )
            + "."
        )
    return pairs


def _by_stem(files: list[Path], folder: Path) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for p in files:
        stem = image_stem(p.name)
        if stem in stems:
            raise InputError(
                f"{stems[stem].name!r} and {p.name!r} in {str(folder)!r} have the same "
                "name but for the ending; keep one of them, so that files pair up by name."
            )
        stems[stem] = p
    return stems


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _is_folder(item, name: str) -> bool:
    if not isinstance(item, (str, os.PathLike)):
        return False
    path = user_path(item, name)  # an empty path is refused, not taken as the current folder
    fmt = input_format_of(path)  # a store, or an image inside one, is an image
    return path.is_dir() and not (fmt is not None and fmt.folder)


def pair_inputs(source, target, what: str = "training") -> list[PairInput]:
    """The pairs of a source and a target given as one image each, lists of images
    (paths or arrays), or two folders whose files pair up by name."""
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    targets = list(target) if isinstance(target, (list, tuple)) else [target]
    prefix = "val_" if what == "validation" else ""
    folders = (
        [_is_folder(i, f"{prefix}source") for i in sources],
        [_is_folder(i, f"{prefix}target") for i in targets],
    )
    if any(folders[0]) or any(folders[1]):
        if not (len(sources) == len(targets) == 1 and folders[0][0] and folders[1][0]):
            for item in sources + targets:  # a folder beside a missing path: say it is missing
                if isinstance(item, (str, os.PathLike)) and not os.path.lexists(item):
                    raise ImageFileError(
                        f"{str(item)!r} does not exist (beside the folder given for the "
                        f"other side); check its spelling, spaces included."
                    )
            folder = next(i for i, f in zip(sources + targets, folders[0] + folders[1]) if f)
            raise ImageFileError(
                f"{str(folder)!r} is a directory, not an image file; to train on folders, "
                f"give a source folder and a target folder for the {what} pairs (files "
                "paired by name), or images (or lists of them) on both sides."
            )
        source_dir = check_input_path(sources[0], InputError, "folder", folder_ok=True)
        target_dir = check_input_path(targets[0], InputError, "folder", folder_ok=True)
        if os.path.samefile(source_dir, target_dir):  # also through links
            same = "" if source_dir == target_dir else f" ({str(target_dir)!r} leads there)"
            raise InputError(
                f"the {what} source and target folders are the same folder, "
                f"{str(source_dir)!r}{same}: every image would be paired with itself. Give "
                "the sources in one folder and their targets in another."
            )
        return [
            PairInput(s, t, s.name if s.name == t.name else f"{s.name} | {t.name}")
            for s, t in match_folders(source_dir, target_dir)
        ]
    if len(sources) != len(targets):
        raise InputError(
            f"got {len(sources)} source image(s) but {len(targets)} target image(s); "
            "give one target per source."
        )
    return [
        PairInput(s, t, _name(s, i, len(sources))) for i, (s, t) in enumerate(zip(sources, targets))
    ]


def _name(item, i: int, count: int) -> str:
    if isinstance(item, (str, os.PathLike)):
        return Path(item).name
    if isinstance(item, ImageData) and item.source is not None:
        return item.source.name
    return f"array {i}" if count > 1 else "array"


def open_pairs(inputs: list[PairInput]) -> tuple[list, list, list]:
    """(array, axes from its file) per source and per target, and each source's pixel
    size (metadata.pixel_size: None when unknown). TIFF files stay on disk (FileArray),
    unless all of them together decode to at most EAGER_BYTES: then they are read whole,
    and train exactly as the same arrays would."""
    opened = [(open_lazy(p.source, "source"), open_lazy(p.target, "target")) for p in inputs]
    files = [d for pair in opened for d in pair if isinstance(d.array, FileArray)]
    if sum(d.array.nbytes for d in files) <= EAGER_BYTES:
        for d in files:
            d.array = d.array[...]
    return (
        [(s.array, s.axes) for s, _ in opened],
        [(t.array, t.axes) for _, t in opened],
        [pixel_size(s.scale, s.unit) for s, _ in opened],
    )


def open_lazy(image, what: str) -> ImageData:
    """A user's image for training: paths through their format's ``open_lazy`` (TIFFs
    as FileArray, read box by box and opened per read) or its lazy reader, arrays as
    they are."""
    if isinstance(image, (str, os.PathLike)):
        fmt = format_of(image)
        if fmt is not None and fmt.open_lazy is not None:
            path = check_input_path(image, ImageFileError, "image file", folder_ok=fmt.folder)
            fmt.check_installed(path)
            array, axes, scale, unit, meta = fmt.open_lazy(path)
            return ImageData(array, axes, scale, unit, source=path, meta=meta)
        return as_image(image, what, lazy=True)
    return as_image(image, what)
