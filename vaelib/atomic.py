"""Files that readers never see half-written: a temp file beside the target, fsync, then `os.replace`.

Checkpoints, metrics JSON, the run manifest, the synthetic annotation files and the CelebA image cache all go
through here, so a kill -9 at any moment leaves either the old file or the new one. A write that fails because
the disk is full or the folder is not writable becomes one `WriteFailedError` sentence instead of an OSError (or
torch's "unexpected pos") traceback; a kill -9 can still orphan a temp file, which `remove_stale_temps` clears.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import WriteFailedError

# mkstemp(prefix=name + ".", suffix=".tmp") names: "<target>.<8 random characters>.tmp".
_TEMP_NAME = re.compile(r".+\.[a-z0-9_]{8}\.tmp")
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write` on a temp file in `path`'s folder, flush it to disk, then move it over `path`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        # mkstemp creates 0600; a plain open() would give 0666 minus the umask, which collaborators on a shared
        # node rely on to read a run.
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        failure = write_failure(path, e)
        if failure is None:
            raise
        raise failure from None
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write(path, lambda f: f.write(text.encode(encoding)))


def write_failure(path: Path, exc: BaseException) -> WriteFailedError | None:
    """The one-sentence error for a full disk or an unwritable folder anywhere in `exc`'s chain, else None.

    torch.save reports a full disk as RuntimeError("unexpected pos") with the OSError only as its context,
    so the whole chain is searched."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL:
            return WriteFailedError(
                f"cannot write {path}: the disk is full ({_free(path.parent)} free); free some space or choose a "
                "run folder on another disk, then rerun (the files already written are kept)."
            )
        if isinstance(seen, OSError) and seen.errno in _NOT_WRITABLE:
            return WriteFailedError(
                f"cannot write {path}: permission denied in {path.parent}; make it writable (chmod u+w) or "
                "choose another run folder, then rerun."
            )
        seen = seen.__cause__ or seen.__context__
    return None


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask can only set it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass  # not Linux: fall back to set-and-restore below
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(folders: list[Path], need_bytes: int = 0) -> None:
    """Before long work starts: each folder can be created and written, and the disk has `need_bytes` free."""
    for folder in folders:
        probe = folder / ".write-test"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            failure = write_failure(probe, e)
            if failure is None:
                raise
            raise failure from None
    if need_bytes and folders:
        free = shutil.disk_usage(folders[0]).free
        if free < need_bytes:
            raise WriteFailedError(
                f"only {_size(free)} free on the disk of {folders[0]}, but this run needs about {_size(need_bytes)} "
                "(two checkpoints); free some space or choose a run folder on another disk."
            )


def remove_stale_temps(folder: Path, log: Callable[[str], None] = print) -> list[Path]:
    """Delete temp files that a killed atomic write left in `folder` (call it only while holding the run lock,
    so no live writer's temp file is taken)."""
    stale = [p for p in Path(folder).rglob("*.tmp") if p.is_file() and _TEMP_NAME.fullmatch(p.name)]
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        log(f"removed {len(stale)} temp file(s) left by an interrupted write in {folder}")
    return stale


def _free(folder: Path) -> str:
    try:
        return _size(shutil.disk_usage(folder).free)
    except OSError:
        return "unknown"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.1f} GiB"
