"""Where results may be written, and how: the one place that decides what may be read
and what may be replaced. Paths are checked before long work starts: an input must be a
readable regular file (or folder), an output may never be one of the inputs, and an
existing path is replaced only when napari-pix2pix wrote it and the caller asked for
that. Every file is written under a unique temporary name in its own folder and renamed
into place when complete, without replacing anything that appeared meanwhile."""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import InputError, OutputError, Pix2PixError
from ..options import user_path

IF_EXISTS = ("error", "overwrite", "resume")
TEMP_EXTRA = len(".12345678.partial")  # what a temporary name adds to the output's
PATH_MAX = 4096  # Linux's limit for a whole path, in bytes


def check_input_path(
    path, error: type[Pix2PixError], what: str, folder_ok: bool = False, name: str = ""
) -> Path:
    """A path to read: it is not empty, exists, is a regular file (or a folder where
    ``folder_ok``), and can be read. A named pipe or a device is refused before anything
    opens it (an open would wait forever). ``name``: the argument, in the message for an
    empty path (default: the ``what``)."""
    path = user_path(path, name or f"the {what}")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{what} {str(path)!r} does not exist.") from None
    except OSError as exc:
        raise error(f"{what} {str(path)!r} cannot be opened ({reason(exc)}).") from exc
    if stat.S_ISDIR(info.st_mode) and not folder_ok:
        article = "an" if what[0] in "aeiou" else "a"
        raise error(f"{str(path)!r} is a directory, not {article} {what}.")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise error(
            f"{what} {str(path)!r} is not a regular file (a named pipe, socket or "
            "device); give the file itself."
        )
    if not os.access(path, os.R_OK):
        raise error(
            f"{what} {str(path)!r} cannot be read (permission denied); check its permissions."
        )
    return path


def check_export_path(path, suffix: str, what: str, ours, overwrite: bool) -> Path:
    """``path`` for an exported file (a bioimage.io zip, an ONNX model): it must end in
    ``suffix`` (``what`` names the file in the message), and an existing one is
    replaced only with ``overwrite`` and only when ``ours(path)`` says we wrote it."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise InputError(f"{what} is a {suffix} file; got {str(path)!r}.")
    check_output_path(
        path,
        if_exists="overwrite" if overwrite else "error",
        ours=ours,
        overwrite_hint="overwrite=True",
    )
    return path


def check_output_path(
    path,
    *,
    inputs: Iterable = (),
    folder_ok: bool = False,
    if_exists: str = "error",
    ours: Callable[[Path], bool] | None = None,
    overwrite_hint: str = "if_exists='overwrite'",
    not_ours: str = "",
) -> Path:
    """Fail before long work starts if the result may not or cannot be written to
    ``path``: it is (or holds, or is inside) one of ``inputs``; it exists and the caller
    did not ask to overwrite it, or napari-pix2pix did not write it (``ours``; ``not_ours``
    adds as what, e.g. " as a prediction"); its folder is missing or not writable; its name is
    too long. ``folder_ok``: the output is itself a folder (a zarr store)."""
    if if_exists not in IF_EXISTS:
        raise InputError(f"if_exists must be one of {IF_EXISTS}, got {if_exists!r}.")
    path = check_name_lengths(path)
    folder = path.parent if str(path.parent) else Path(".")
    if len(path.name.encode()) + TEMP_EXTRA > _name_max(folder):
        raise InputError(
            f"the file name {path.name[:40]!r}... is too long for this file system "
            f"({len(path.name.encode())} bytes); choose a shorter name."
        )
    clash = next((p for p in inputs if p is not None and _overlaps(path, Path(p))), None)
    if clash is not None:
        raise InputError(
            f"the output {str(path)!r} is also an input ({str(clash)!r}); writing it "
            "would destroy the input. Choose another output name."
        )
    if path.exists() or path.is_symlink():
        _check_existing(path, folder_ok, if_exists, ours, overwrite_hint, not_ours)
    if not folder.is_dir():
        raise InputError(f"output folder {str(folder)!r} does not exist; create it first.")
    try:  # os.access is not enough: read-only mounts and network shares lie about it
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(
            f"output folder {str(folder)!r} is not writable ({reason(exc)}); choose another folder."
        ) from exc
    return path


def _check_existing(
    path: Path, folder_ok: bool, if_exists: str, ours, hint: str, not_ours: str
) -> None:
    if path.is_dir() and not folder_ok:
        raise InputError(
            f"output path {str(path)!r} is a directory; give a file name (inside that "
            "folder, or beside it)."
        )
    if not (path.is_file() or path.is_dir()):
        raise InputError(
            f"output path {str(path)!r} exists and is not a regular file (a named "
            "pipe, socket, device or broken link); choose another name."
        )
    if if_exists == "error":
        raise InputError(
            f"{str(path)!r} exists; choose another name, or pass {hint} (CLI: --overwrite) "
            "to replace a result of napari-pix2pix."
        )
    if ours is not None and not ours(path):
        raise InputError(
            f"{str(path)!r} exists and was not written by napari-pix2pix{not_ours}, so "
            "it is never replaced; choose another name, or delete or rename it yourself."
        )


def check_name_lengths(path, name: str = "the output path") -> Path:
    """Refuse an empty path (``name`` says which), or one with a name the file system
    cannot hold, before anything looks at it: Path.exists() raises (rather than answers)
    for a folder name over the limit."""
    path = user_path(path, name)
    ancestor = next((p for p in path.absolute().parents if _is_dir(p)), Path("/"))
    limit = _name_max(ancestor)
    for part in path.parts:
        if len(part.encode()) > limit:
            raise InputError(
                f"the name {part[:40]!r}... in {str(path)[:120]!r} is too long for this "
                f"file system ({len(part.encode())} bytes, at most {limit}); choose a "
                "shorter name."
            )
    if len(os.fsencode(path.absolute())) >= PATH_MAX:
        raise InputError(
            f"the path {str(path)[:120]!r}... is too long ({len(os.fsencode(path))} "
            f"bytes, at most {PATH_MAX - 1}); choose a shorter path."
        )
    return path


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _overlaps(out: Path, inp: Path) -> bool:
    """The same file (also through links), the input inside the output, or the output
    inside an input store (a zarr). A file written into a plain folder given as an input
    (a model or run folder) destroys nothing."""
    try:
        if out.exists() and inp.exists() and os.path.samefile(out, inp):
            return True
    except OSError:
        pass
    try:
        a, b = out.resolve(), inp.resolve()
    except (RuntimeError, OSError) as exc:  # a symbolic-link loop (RuntimeError <= 3.12)
        bad = next((p for p in (out, inp) if _loops(p)), out)
        raise InputError(
            f"{str(bad)!r} is a symbolic link that leads back to itself ({exc}); point it "
            "at a file, or give another path."
        ) from exc
    return a == b or a in b.parents or (b in a.parents and _is_store(b))


def _loops(path: Path) -> bool:
    try:
        path.resolve(strict=False)
        return False
    except (RuntimeError, OSError):
        return True


def _is_store(folder: Path) -> bool:
    return folder.suffix.lower() == ".zarr" or any(
        (folder / name).exists() for name in ("zarr.json", ".zarray", ".zgroup")
    )


TOKEN_BYTES = 4  # of the unique part of a temporary name


def unfinished_writes(folder: Path, names) -> list[Path]:
    """AtomicFile's hidden temporary files for ``names`` in ``folder``: what a process
    killed while writing them leaves (never complete)."""
    pattern = re.compile(
        rf"\.({'|'.join(map(re.escape, names))})\.[0-9a-f]{{{2 * TOKEN_BYTES}}}\.tmp"
    )
    return [p for p in folder.iterdir() if pattern.fullmatch(p.name) and p.is_file()]


class AtomicFile:
    """A temporary file beside ``path`` that becomes ``path`` on ``commit``.

    The temporary name is unique in the folder; it is removed if the write fails, except
    with ``partial``: then it is named ``<name>.<id>.partial`` and stays, named as what it
    is (a streamed prediction cut short). ``replace``: the caller may replace an existing
    ``path`` (checked before); otherwise a ``path`` that appeared meanwhile is kept and
    the result is renamed beside it. As a context manager it commits on success; an
    OSError while writing or renaming becomes an OutputError naming the path."""

    def __init__(
        self, path, partial: bool = False, suffix: str = ".tmp", replace: bool = False
    ) -> None:
        self.path, self.partial, self.replace = Path(path), partial, replace
        token = secrets.token_hex(TOKEN_BYTES)
        name = (
            f"{self.path.name}.{token}.partial" if partial else f".{self.path.name}.{token}{suffix}"
        )
        self.temp = self.path.with_name(name)
        try:
            fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
            os.close(fd)
        except OSError as exc:
            raise OutputError(f"cannot write beside {str(self.path)!r} ({reason(exc)}).") from exc

    def commit(self) -> Path:
        try:
            with open(self.temp, "rb+") as fh:
                os.fsync(fh.fileno())
            if self.replace:
                os.replace(self.temp, self.path)
                return self.path
            return self._place()
        except OSError as exc:
            self.discard()
            raise OutputError(
                f"writing {str(self.path)!r} failed ({reason(exc)}); nothing was replaced."
            ) from exc
        except BaseException:
            self.discard()
            raise

    def _place(self) -> Path:
        """Rename without replacing: a hard link fails if ``path`` exists."""
        try:
            os.link(self.temp, self.path)
        except FileExistsError:
            kept = _free_name(self.path)
            os.replace(self.temp, kept)
            raise OutputError(
                f"{str(self.path)!r} appeared while napari-pix2pix was writing it "
                f"and was left alone; the result was saved as {str(kept)!r}."
            ) from None
        except OSError as exc:  # no hard links here (FAT, some network file systems)
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            if self.path.exists():
                raise FileExistsError(errno.EEXIST, "exists", str(self.path)) from exc
            os.rename(self.temp, self.path)
            return self.path
        os.unlink(self.temp)
        return self.path

    def discard(self) -> None:
        if not self.partial and self.temp.exists():
            self.temp.unlink()

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.commit()
            return
        self.discard()
        if issubclass(kind, OSError) and not isinstance(exc, Pix2PixError):
            raise OutputError(
                f"writing {str(self.path)!r} failed ({reason(exc)}); nothing was replaced."
            ) from exc


def atomic_write(path, data: bytes, replace: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file (a crash mid-write leaves any
    previous file intact)."""
    with AtomicFile(path, replace=replace) as f:
        f.temp.write_bytes(data)
    return Path(path)


def _free_name(path: Path) -> Path:
    """``name-<id>.suffixes`` beside ``path``, not yet taken."""
    stem, suffixes = path.name.split(".", 1) if "." in path.name else (path.name, "")
    while True:
        candidate = path.with_name(
            f"{stem}-{secrets.token_hex(3)}" + (f".{suffixes}" if suffixes else "")
        )
        if not candidate.exists():
            return candidate


def reason(exc: OSError) -> str:
    """What went wrong, in words a user can act on."""
    fixes = {
        errno.ENOSPC: "no space left on the device: free space or choose another disk",
        errno.EDQUOT: "disk quota exceeded: free space or choose another disk",
        errno.EACCES: "permission denied: check the permissions or choose another place",
        errno.EPERM: "operation not permitted: check the permissions",
        errno.EROFS: "the file system is read-only: choose another place",
        errno.ENAMETOOLONG: "the file name is too long: choose a shorter name",
        errno.ENOENT: "a folder on the way does not exist",
        errno.EISDIR: "it is a directory",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
    }
    code = getattr(exc, "errno", None)
    if code is None and re.search(r"\d+ requested and \d+ written", str(exc)):
        code = errno.ENOSPC  # numpy's short write (tofile) carries no errno
    return fixes.get(code, getattr(exc, "strerror", None) or str(exc))
