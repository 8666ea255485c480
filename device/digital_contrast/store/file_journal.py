"""The write-ahead file journal: every patient file is named in a journal before it is written,
so that no crash can leave a file that nobody knows about.

    <data_dir>/journal/<owner>/<intent>.log    one line per path (relative to data_dir)

An owner is one process (host, pid and the pid's start time, so a reused pid is not mistaken
for it). An intent covers one unit of work (a STOW request, a job attempt); its file is
written line by line before each file it names and removed once the rows that claim the files
committed, or their refusal was journaled for the purge. A process killed mid-way leaves its
intents behind: `dead_intents` finds them (an owner on this host whose process is gone, or on
another host silent for longer than the grace period), and `store.orphans` removes what no
row claims. Lines are written without fsync: they survive a killed process (the page cache
outlives it); after a power loss, files the journal did not reach are found by the purge's
full sweep of unclaimed files.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

JOURNAL = "journal"
ABANDONED = ".abandoned"  # an intent whose work ended without removing its leftovers
OTHER_HOST_GRACE_S = 6 * 3600.0  # an owner on another host is presumed dead after this silence


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@lru_cache(maxsize=1)
def _host() -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname())[:64]


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: str

    @classmethod
    def this_process(cls) -> Owner:
        return cls(_host(), os.getpid(), _start_time(os.getpid()) or "0")

    @classmethod
    def parse(cls, name: str) -> Owner | None:
        host, _, rest = name.rpartition("~")
        pid, _, started = rest.partition("-")
        return cls(host, int(pid), started) if host and pid.isdigit() and started else None

    @property
    def name(self) -> str:
        return f"{self.host}~{self.pid}-{self.started}"

    def is_alive(self, folder: Path) -> bool:
        if self.host != _host():  # cannot be asked: alive while its journal is recent
            try:
                newest = max((p.stat().st_mtime for p in folder.iterdir()),
                             default=folder.stat().st_mtime)
            except FileNotFoundError:
                return False
            return time.time() - newest < OTHER_HOST_GRACE_S
        return _start_time(self.pid) == self.started


class Intent:
    """The journal of one unit of work; `add` a path before writing it."""

    def __init__(self, path: Path, data_dir: Path) -> None:
        self.path, self.data_dir = path, data_dir
        self._prefix = os.path.join(data_dir, "")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def add(self, *paths: str | Path) -> None:
        """Paths inside the data folder (written relative to it)."""
        lines = []
        for path in map(os.fspath, paths):
            if not path.startswith(self._prefix):
                raise ValueError(f"{path} is not inside the data folder {self.data_dir}")
            lines.append(f"{path[len(self._prefix):]}\n")
        os.write(self._fd, "".join(lines).encode("utf-8"))

    def close(self) -> None:
        """The work's files are claimed by committed rows, or were removed."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self.path.unlink(missing_ok=True)

    def abandon(self) -> None:
        """The work is over but its unclaimed files could not be removed: the next sweep
        does it, although this process still runs."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self.path.rename(self.path.with_suffix(ABANDONED))

    def __enter__(self) -> Intent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class JournalEntry:
    """An intent read back (its process may be gone)."""

    path: Path
    data_dir: Path

    def paths(self) -> list[Path]:
        try:
            lines = self.path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []
        # Only paths inside the data folder: a journal is data, not an instruction.
        return [self.data_dir / line for line in lines
                if line and not line.startswith("/") and ".." not in line.split("/")]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        folder = self.path.parent
        if not any(folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)


class FileJournal:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / JOURNAL

    def intent(self) -> Intent:
        folder = self.root / Owner.this_process().name
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return Intent(folder / f"{uuid.uuid4().hex}.log", self.data_dir)

    def _owners(self) -> Iterator[tuple[Path, Owner]]:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            owner = Owner.parse(folder.name)
            if owner is not None and folder.is_dir():
                yield folder, owner

    def live_paths(self, excluding: Intent | None = None) -> set[Path]:
        """Paths named by intents of processes still running (but `excluding`): never
        removed, since identical bytes may be on their way to a row."""
        live: set[Path] = set()
        for folder, owner in self._owners():
            if owner.is_alive(folder):
                for intent in folder.glob("*.log"):
                    if excluding is None or intent != excluding.path:
                        live.update(JournalEntry(intent, self.data_dir).paths())
        return live

    def dead_intents(self) -> list[JournalEntry]:
        """Intents of stopped processes, and abandoned ones of any process."""
        entries = []
        for folder, owner in self._owners():
            paths = list(folder.glob(f"*{ABANDONED}"))
            if not owner.is_alive(folder):
                paths += folder.glob("*.log")
            entries += [JournalEntry(p, self.data_dir) for p in sorted(paths)]
        return entries
