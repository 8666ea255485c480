"""A protocol is run only as committed: the file must be tracked by git with no change in the
work tree or the index, and its committed bytes must be the bytes whose hash the run fixed. The
commit is recorded, so a record names the exact, reviewable revision of its criteria."""

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from digital_contrast.validation.errors import ValidationRunError

_GIT_TIMEOUT_S = 30


@dataclass(frozen=True)
class ProtocolCommit:
    repository: Path  # the work tree holding the protocol
    path: str  # the protocol's path inside it
    commit: str  # HEAD when the run started


def _git(repository: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repository), *args], capture_output=True,
                          timeout=_GIT_TIMEOUT_S, check=False)


def _refuse(name: str, why: str) -> ValidationRunError:
    return ValidationRunError("PROTOCOL_UNCOMMITTED",
                              f"{name} {why}: commit the protocol (in this repository or the "
                              "site's protocol repository) and run validate again")


def require_committed(path: Path, sha256: str, name: str) -> ProtocolCommit:
    """The commit the protocol at `path` (read with hash `sha256`) is committed in;
    PROTOCOL_UNCOMMITTED when it is not under git, untracked, changed or staged."""
    if shutil.which("git") is None:
        raise _refuse(name, "cannot be checked (git is not installed)")
    resolved = Path(path).resolve()
    top = _git(resolved.parent, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise _refuse(name, "is not in a git repository")
    repository = Path(top.stdout.decode().strip())
    inside = resolved.relative_to(repository).as_posix()
    if _git(repository, "ls-files", "--error-unmatch", "--", inside).returncode != 0:
        raise _refuse(name, "is not tracked by git")
    status = _git(repository, "status", "--porcelain", "--", inside)
    if status.returncode != 0 or status.stdout.strip():
        raise _refuse(name, "has uncommitted changes")
    head = _git(repository, "rev-parse", "HEAD")
    committed = _git(repository, "show", f"HEAD:{inside}")
    if head.returncode != 0 or committed.returncode != 0 or \
            hashlib.sha256(committed.stdout).hexdigest() != sha256:
        raise _refuse(name, "differs from its committed version")
    return ProtocolCommit(repository, inside, head.stdout.decode().strip())
