"""One writer per run folder: `python -m vaelib train` and `run` hold RUN_DIR/.lock while they work.

Two trainers in one folder would overwrite each other's checkpoints and metrics, each exiting 0. The lock is an
flock on RUN_DIR/.lock, so the kernel releases it whenever the holder dies (even by kill -9) and two processes
can never both hold it; the file also names pid, host and command, so the refusal says who holds the folder, and
a file left by a dead process is reported as taken over. The notebooks that `run` starts inherit
VAELIB_RUN_LOCK and do not lock again (their parent holds the folder for them).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import RunLockedError

LOCK_NAME = ".lock"
_INHERITED = "VAELIB_RUN_LOCK"


@contextmanager
def run_lock(run_dir: Path, command: str, log: Callable[[str], None] = print) -> Iterator[Path]:
    """Hold `run_dir`'s lock for the `with` body; RunLockedError (one sentence) if another process holds it."""
    path = Path(run_dir) / LOCK_NAME
    if os.environ.get(_INHERITED) == str(path):
        yield path  # a notebook kernel started by the runner that holds this lock
        return
    fd = _acquire(path, command, log)
    os.environ[_INHERITED] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(_INHERITED, None)
        path.unlink(missing_ok=True)  # before closing: a waiting process never locks an unlinked file
        os.close(fd)


def _acquire(path: Path, command: str, log: Callable[[str], None]) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RunLockedError(
                f"run folder {path.parent} is in use by {holder.get('command', 'another process')} (pid "
                f"{holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('started', '?')}); wait "
                "for it to finish or choose another run folder."
            ) from None
        # The holder may have unlinked the file between our open and flock: then we locked an orphan; retry.
        if not _same_file(fd, path):
            os.close(fd)
            continue
        previous = _read(fd)
        if previous:
            log(f"note: took over the lock of {path.parent} left by pid {previous.get('pid')} on "
                f"{previous.get('host')} ({previous.get('command')}), which is no longer running")
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        return fd


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 65536, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}  # written by a process killed mid-write: nothing to name


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return os.fstat(fd).st_ino == st.st_ino
