"""The SHA-256 hashes of each distribution for the SBOM (IEC 62304 8.1.2), with their source.

Preferred: the `--hash=sha256:` options of the lock files (the hashes of the published
archives pip checked at install). Where a lock pins a distribution without hashes, which is
the case of `requirements.lock` and `requirements-dev.lock` today (written from `pip freeze`),
the hash is that of the installed distribution's `RECORD` file: the installer's manifest of
every installed file with its own SHA-256. It identifies the installed file set, not the
published archive, and the SBOM says so for each component.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.utils import canonicalize_name

from digital_contrast.config import REPO_ROOT

LOCK_FILES = (REPO_ROOT / "requirements.lock", REPO_ROOT / "requirements-dev.lock")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class DistHashes:
    sha256: tuple[str, ...]  # empty: no hash could be obtained (`source` says why)
    source: str


def lock_hashes(lock_files: tuple[Path, ...] = LOCK_FILES) -> dict[tuple[str, str], list[str]]:
    """(canonical name, version) -> the sha256 hashes its lock line carries (possibly none)."""
    found: dict[tuple[str, str], list[str]] = {}
    for lock in lock_files:
        if not Path(lock).is_file():
            continue
        text = Path(lock).read_text(encoding="utf-8").replace("\\\n", " ")
        for line in text.splitlines():
            if match := _PIN.match(line.strip()):
                key = (canonicalize_name(match[1]), match[2])
                found.setdefault(key, []).extend(_HASH.findall(line))
    return found


def record_hash(name: str) -> str | None:
    """SHA-256 of the installed distribution's RECORD file, None if it has none."""
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        return None
    text = dist.read_text("RECORD")
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None


def dist_hashes(name: str, version: str, locks: dict[tuple[str, str], list[str]]
                ) -> DistHashes:
    """The lock's hashes where it has some, else the installed RECORD's, naming the source."""
    key = (canonicalize_name(name), version)
    if hashes := locks.get(key):
        return DistHashes(tuple(hashes), "lock file --hash=sha256 (published archives)")
    why = "pinned without --hash in the lock files" if key in locks else "not in the lock files"
    if digest := record_hash(name):
        return DistHashes((digest,), f"SHA-256 of the installed dist-info/RECORD ({why})")
    return DistHashes((), f"none: {why}, and no installed RECORD file")
