"""Files the station writes: whole or not at all, never through a link someone planted, and owner-only where
they hold secrets (password and token hashes in the database, the log, the key that signs sessions).

On Windows the modes are left alone: a new file there gets its folder's ACL, the owner's by default.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

OWNER_DIR = 0o700
OWNER_FILE = 0o600
_POSIX = os.name != "nt"


def private_dir(path: Path) -> None:
    """Create the directory (and its parents) owner-only, whatever the umask. A directory that already exists
    is left as it is: it may be one the user chose and shares on purpose."""
    if path.is_dir():
        return
    path.mkdir(mode=OWNER_DIR, parents=True, exist_ok=True)
    if _POSIX:
        os.chmod(path, OWNER_DIR)  # mkdir's mode is cut by the umask: set it exactly


def private_file(path: Path) -> None:
    """Make ``path`` owner-only: created empty with mode 0600 when missing (never through a link), else
    tightened when its group or others may read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), OWNER_FILE)
    except FileExistsError:
        tighten(path)
        return
    try:
        _exact(fd)
    finally:
        os.close(fd)


def tighten(path: Path) -> None:
    """Take group's and others' rights away from an existing file of the station. A file that is missing, or
    that this user may not change (another owner's, on a read-only disk), is left as it is: opening it says
    what is wrong, where that matters."""
    if not _POSIX:
        return
    with contextlib.suppress(OSError):
        mode = os.lstat(path).st_mode
        if stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o077:  # a link is left alone: its target is not ours
            os.chmod(path, stat.S_IMODE(mode) & 0o700)


def open_private(path: str | os.PathLike[str], encoding: str | None = "utf-8", errors: str | None = None) -> IO[str]:
    """Open a text file for appending, created owner-only (the service's log and its rotated files)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), OWNER_FILE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != OWNER_FILE:  # a file of before, or the umask cut the mode
            _exact(fd)
        return open(fd, "a", encoding=encoding, errors=errors)
    except BaseException:
        os.close(fd)
        raise


def _exact(fd: int) -> None:
    if _POSIX:
        os.fchmod(fd, OWNER_FILE)  # os.open's mode is cut by the umask, and a umask of 0277 would cut too much


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], binary: bool = False) -> Iterator[IO[Any]]:
    """Write ``path`` whole or not at all: into a new temporary file of the same folder, created exclusively
    (a planted file or link at any name is never opened), renamed over ``path`` only when the block ends
    without an error. A link at ``path`` itself is replaced by the file, never written through.
    The file is owner-only (mkstemp's mode): manifests and labels carry claim IDs."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with open(fd, "wb") if binary else open(fd, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """``path`` holds ``data``, whole, written through ``replacing``."""
    with replacing(path, binary=True) as out:
        out.write(data)
