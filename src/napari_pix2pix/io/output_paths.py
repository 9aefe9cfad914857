"""Where results may be written, and how. An output path is checked before long work
starts; every file is written under a temporary name in its own folder and renamed into
place when complete, so readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InputError


def check_output_path(path, folder_ok: bool = False) -> None:
    """Fail before long work starts if the result could not be written there
    (``folder_ok``: the output is itself a folder, e.g. a zarr store)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir() and not folder_ok:
        raise InputError(
            f"output path {str(path)!r} is a directory; give a file name such as "
            f"{str(path / 'result.ome.tif')!r}."
        )
    if not folder.exists():
        raise InputError(f"output folder {str(folder)!r} does not exist; create it first.")
    try:  # os.access is not enough: read-only mounts and network shares lie about it
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(
            f"output folder {str(folder)!r} is not writable ({exc.strerror}); "
            "choose another folder."
        ) from exc


class AtomicFile:
    """A temporary file beside ``path`` that becomes ``path`` on ``commit``.

    The temporary name is unique and the file is removed if the write fails; with
    ``partial`` it is ``<name>.partial`` and stays after a failure, named as what it is
    (a streamed prediction cut short). As a context manager it commits on success."""

    def __init__(self, path, partial: bool = False, suffix: str = ".tmp") -> None:
        self.path, self.partial = Path(path), partial
        if partial:
            self.temp = self.path.with_name(self.path.name + ".partial")
        else:
            fd, tmp = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=suffix
            )
            os.close(fd)
            self.temp = Path(tmp)

    def commit(self) -> Path:
        try:
            with open(self.temp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self.temp, self.path)
        except BaseException:
            self.discard()
            raise
        return self.path

    def discard(self) -> None:
        if not self.partial and self.temp.exists():
            self.temp.unlink()

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def atomic_write(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file (a crash mid-write leaves any
    previous file intact)."""
    with AtomicFile(path) as f:
        f.temp.write_bytes(data)
    return Path(path)
