"""The simulated unit's file system: files and folders in memory, with the errors a real one gives, and the
permission bits of each (new files get ``0o666`` less the umask, as ``open(2)`` gives them; ``chmod`` changes
them), so that the rig's owner-only credential files can be checked as on a real unit."""

from __future__ import annotations

import fnmatch
import posixpath
import threading
from collections.abc import Callable

FILE_MODE = 0o666  # what open(2) is asked for by a shell's redirection, before the umask
FOLDER_MODE = 0o777


class FsError(Exception):
    """A failed file operation; the message is what coreutils would print after ``cmd: path: ``."""


class MemoryFS:
    """Absolute paths to bytes; folders are a set. Thread-safe, as the agent reads while the shell writes."""

    def __init__(self, folders: tuple[str, ...] = ("/", "/tmp", "/etc", "/etc/ioto", "/var", "/var/lib", "/var/lib/ioto", "/root")) -> None:
        self.files: dict[str, bytes] = {}
        self.folders: set[str] = set(folders)
        self.modes: dict[str, int] = {}  # permission bits; a path missing here has the defaults of a 022 umask
        self.umask = 0o022
        self.lock = threading.RLock()
        self.cwd = "/root"
        # Called with (path, data) for every write; returns what is stored (a fault of the unit's storage).
        self.on_write: Callable[[str, bytes], bytes] | None = None
        self.capacity: int | None = None  # bytes all files may hold together (a full disk), None: unbounded
        self.immutable: set[str] = set()  # paths that cannot be removed (chattr +i), nor the folders holding them

    def path(self, name: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, name))

    def _parent_ok(self, path: str) -> None:
        if posixpath.dirname(path) not in self.folders:
            raise FsError("No such file or directory")

    def read(self, name: str) -> bytes:
        path = self.path(name)
        with self.lock:
            if path in self.folders:
                raise FsError("Is a directory")
            if path not in self.files:
                raise FsError("No such file or directory")
            return self.files[path]

    def write(self, name: str, data: bytes, append: bool = False, mode: int = FILE_MODE) -> None:
        """Write (or append to) a file; a new file gets ``mode`` less the umask, an existing one keeps its mode."""
        path = self.path(name)
        if path == "/dev/null":
            return
        with self.lock:
            if path in self.folders:
                raise FsError("Is a directory")
            self._parent_ok(path)
            if path not in self.files:
                self.modes[path] = mode & ~self.umask
            if self.on_write is not None:
                data = self.on_write(path, data)
            content = (self.files.get(path, b"") if append else b"") + data
            if self.capacity is not None and data and \
                    sum(map(len, self.files.values())) - len(self.files.get(path, b"")) + len(content) > self.capacity:
                raise FsError("No space left on device")
            self.files[path] = content

    def mode(self, name: str) -> int:
        """A file's or folder's permission bits."""
        path = self.path(name)
        with self.lock:
            if path not in self.files and path not in self.folders:
                raise FsError("No such file or directory")
            default = (FOLDER_MODE if path in self.folders else FILE_MODE) & ~0o022
            return self.modes.get(path, default)

    def chmod(self, name: str, mode: int) -> None:
        path = self.path(name)
        with self.lock:
            if path not in self.files and path not in self.folders:
                raise FsError("No such file or directory")
            self.modes[path] = mode & 0o7777

    def exists(self, name: str) -> bool:
        path = self.path(name)
        with self.lock:
            return path in self.files or path in self.folders

    def mkdir(self, name: str, parents: bool = False) -> None:
        path = self.path(name)
        with self.lock:
            if path in self.files or (path in self.folders and not parents):
                raise FsError("File exists")
            if parents:
                parts = path.strip("/").split("/")
                for depth in range(1, len(parts) + 1):
                    folder = "/" + "/".join(parts[:depth])
                    if folder in self.files:
                        raise FsError("Not a directory")
                    if folder not in self.folders:
                        self.modes[folder] = FOLDER_MODE & ~self.umask
                    self.folders.add(folder)
            else:
                self._parent_ok(path)
                self.modes[path] = FOLDER_MODE & ~self.umask
                self.folders.add(path)

    def remove(self, name: str, recursive: bool = False) -> None:
        path = self.path(name)
        with self.lock:
            if any(p == path or p.startswith(path.rstrip("/") + "/") for p in self.immutable):
                raise FsError("Operation not permitted")
            if path in self.files:
                del self.files[path]
                self.modes.pop(path, None)
            elif path in self.folders:
                inside = [p for p in (*self.files, *self.folders) if p.startswith(path.rstrip("/") + "/")]
                if inside and not recursive:
                    raise FsError("Directory not empty")
                if not recursive:
                    raise FsError("Is a directory")
                for p in inside:
                    self.files.pop(p, None)
                    self.folders.discard(p)
                    self.modes.pop(p, None)
                self.folders.discard(path)
                self.modes.pop(path, None)
            else:
                raise FsError("No such file or directory")

    def rename(self, source: str, target: str) -> None:
        src, dst = self.path(source), self.path(target)
        with self.lock:
            if src not in self.files:
                raise FsError("No such file or directory")
            if dst in self.folders:
                dst = posixpath.join(dst, posixpath.basename(src))
            self._parent_ok(dst)
            self.files[dst] = self.files.pop(src)
            self.modes[dst] = self.modes.pop(src, FILE_MODE & ~0o022)

    def glob(self, pattern: str) -> list[str]:
        """Paths matching a pattern with wildcards in its last part, sorted as a shell sorts them."""
        folder, name = posixpath.split(pattern)
        base = self.path(folder or ".")
        with self.lock:
            names = [posixpath.basename(p) for p in (*self.files, *self.folders)
                     if posixpath.dirname(p) == base and p != "/"]
        return sorted(posixpath.join(folder, n) if folder else n for n in names if fnmatch.fnmatchcase(n, name))
