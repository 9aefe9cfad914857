"""One run owns a run folder at a time. Two trainings writing one folder would each
finish "successfully" while replacing each other's checkpoint, best model and log; the
second is refused before it reads any data, naming the run that owns the folder.

The lock is the operating system's (``flock`` on ``run.lock`` in the folder, held for
the whole run): a run that crashes or is killed releases it with its process, so no
stale lock ever has to be cleared by hand. The file says who holds it (process id,
host, start time) for the message; a run that ends removes it."""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path

from ..errors import InputError

try:
    import fcntl
except ImportError:  # Windows: a byte-range lock far past the owner's note
    fcntl = None
    import msvcrt

LOCK_NAME = "run.lock"
_WINDOWS_LOCKED_BYTE = 2**30  # past the note, which the next run reads while it is held


class RunLock:
    """The lock on one run folder, held until ``release`` (or the process's end)."""

    def __init__(self, folder) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the folder, or raise InputError naming its owner. The lock file may be
        removed by the owner as it ends, between our open and our lock: then the lock
        we got is on a file no other run will see, and the file is opened again."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:  # the folder checks that follow say why
                warnings.warn(f"the run folder cannot be locked ({exc}).", stacklevel=3)
                return self
            if not _try_lock(fd):
                note = _read_note(fd)
                os.close(fd)
                raise InputError(_in_use_message(self.path.parent, note))
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        note = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(note).encode())
        return self

    def release(self) -> None:
        """Give the folder up: the file goes first (while still held, so that no run
        takes a file that is about to disappear), then the lock."""
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only folder now: the lock itself still goes with the descriptor
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_run_folder(folder) -> RunLock:
    """The folder's lock, taken (the folder must exist)."""
    return RunLock(folder).acquire()


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, _WINDOWS_LOCKED_BYTE, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except BlockingIOError:
        return False
    except OSError as exc:
        if fcntl is None:  # msvcrt says "held by another" as a plain OSError
            return False
        # a file system without locks (some network shares): run unguarded, said once
        warnings.warn(f"the run folder cannot be locked ({exc}).", stacklevel=4)
    return True


def _read_note(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        note = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _in_use_message(folder: Path, note: dict) -> str:
    pid, host, since = note.get("pid"), note.get("host"), note.get("since")
    if isinstance(pid, int) and isinstance(host, str):
        mine = pid == os.getpid() and host == socket.gethostname()
        owner = f"process {pid} on {host}" + (", this one" if mine else "")
        if isinstance(since, (int, float)):
            owner += f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
    else:
        owner = "a run that is just starting"
    return (
        f"the run folder {str(folder)!r} is in use by another training run ({owner}); one "
        "run owns a run folder at a time. Give this run another folder (checkpoint_dir=, "
        "CLI --checkpoint-dir), or wait for that run to end (or stop it) and resume then."
    )
