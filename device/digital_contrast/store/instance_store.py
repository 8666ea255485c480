"""Content-addressed DICOM instance files: `<root>/ab/cd/abcd....dcm`, named by their SHA-256.

Writes are atomic (temporary file, fsync, `os.replace`) and idempotent: the same bytes always
land at the same path. Reads re-check the hash, so a file changed on disk is never served.
A batch (a STOW request) writes with `put(sync=False)` and then calls `sync()` once: one
syncfs(2) makes every file, rename and new folder durable, instead of two fsyncs per file.
"""

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.file_journal import FileJournal, Intent

_RELATIVE_PATH = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.dcm$")
_CHUNK = 1 << 20


class StoredFile(NamedTuple):
    path: str  # relative to the store root, always with "/" separators
    sha256: str
    size: int


def relative_path_for(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.dcm"


def _file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class InstanceStore:
    """Files under `root` (normally `<data_dir>/instances`), written after their intent in the
    data folder's file journal (`<root>/../journal`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.journal = FileJournal(self.root.parent)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> "InstanceStore":
        return cls(Path(data_dir) / "instances")

    def path(self, relative_path: str) -> Path:
        """The absolute path of a stored file; only well-formed store paths are accepted."""
        if not _RELATIVE_PATH.match(relative_path):
            raise StoreError(StoreErrorCode.INSTANCE_MISSING,
                             f"not an instance store path: {relative_path!r}")
        return self.root / relative_path

    def put(self, data: bytes, *, sync: bool = True, intent: Intent | None = None
            ) -> StoredFile:
        """Store `data`, named in `intent` first; with `sync=False` it is durable only after
        the next `sync()`."""
        sha256 = hashlib.sha256(data).hexdigest()
        relative = relative_path_for(sha256)
        target = os.path.join(self.root, relative)
        if intent is not None:
            intent.add(target)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(target).st_size == len(data) and _file_sha256(target) == sha256:
                os.utime(target)  # the put time tells retention the file is wanted again
                return StoredFile(relative, sha256, len(data))
        # A missing or damaged file is (re)written whole; readers see old or new, never half.
        # A name of its own per writer: two requests may put the same bytes at once.
        folder = os.path.dirname(target)
        temp = os.path.join(folder, f".tmp-{sha256}-{uuid.uuid4().hex}.dcm")
        fd = self._create(temp)
        try:
            with os.fdopen(fd, "wb", buffering=0) as handle:
                view = memoryview(data)
                while view:
                    view = view[handle.write(view):]
                if sync:
                    os.fsync(handle.fileno())
                else:
                    _start_writeback(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        if sync:
            _fsync_dir(folder)
        return StoredFile(relative, sha256, len(data))

    def _create(self, path: str) -> int:
        """A new private file (0600), its folders created on first use: the root and the two
        levels below it 0700 whatever the umask (mkdir's `parents` would use the default mode
        for the upper ones)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(path, flags, 0o600)
        except FileNotFoundError:
            folder = Path(path).parent
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.parent.mkdir(mode=0o700, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
            return os.open(path, flags, 0o600)

    def sync(self) -> None:
        """Make every earlier `put(sync=False)` durable (file data, renames and new folders)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _syncfs(self.root)

    def _existing(self, relative_path: str) -> Path:
        path = self.path(relative_path)
        if not path.is_file():
            raise StoreError(StoreErrorCode.INSTANCE_MISSING,
                             f"instance file {relative_path} is missing")
        return path

    @staticmethod
    def _verify(relative_path: str, actual: str, expected: str) -> None:
        if actual != expected:
            raise StoreError(StoreErrorCode.INSTANCE_CORRUPT,
                             f"instance file {relative_path} does not match its recorded hash")

    def read(self, relative_path: str, expected_sha256: str) -> bytes:
        """The file's bytes, after checking them against the hash recorded with the row."""
        data = self._existing(relative_path).read_bytes()
        self._verify(relative_path, hashlib.sha256(data).hexdigest(), expected_sha256)
        return data

    def open(self, relative_path: str, expected_sha256: str) -> BinaryIO:
        """An open binary file, checked first (files are immutable once written)."""
        path = self._existing(relative_path)
        self._verify(relative_path, _file_sha256(path), expected_sha256)
        return path.open("rb")

    def exists(self, relative_path: str) -> bool:
        return self.path(relative_path).is_file()

    def remove_temporaries(self, relative_path: str) -> None:
        """Half-written copies of one file, left by a process killed while writing it."""
        path = self.path(relative_path)
        for temp in path.parent.glob(f".tmp-{path.stem}-*.dcm"):
            temp.unlink(missing_ok=True)

    def delete(self, relative_path: str, *, unless_put_since: datetime | None = None) -> bool:
        """Remove a file; False when it was already gone (deletion is re-runnable) or, with
        `unless_put_since`, when it was put again at or after that time."""
        path = self.path(relative_path)
        try:
            if unless_put_since is not None and \
                    path.stat().st_mtime >= unless_put_since.timestamp():
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range = getattr(_LIBC, "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def _start_writeback(fd: int) -> None:
    """Start writing a file's pages to disk now, without waiting (sync_file_range(2), Linux):
    the `sync()` that makes a request durable then finds them written instead of writing
    every file of the request at its end. Only a hint: durability still comes from sync."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def _syncfs(folder: Path) -> None:
    """syncfs(2) of the filesystem holding `folder` (Linux); `os.sync()` where there is none."""
    syncfs = getattr(_LIBC, "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs failed: {os.strerror(error)}")
    finally:
        os.close(fd)


def _fsync_dir(folder: str | Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
