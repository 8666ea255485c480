"""The working tree a test run ran on, as one git tree hash.

The hash is git's own tree id of every file git would commit from the working tree (tracked or
new, ignored ones left out, uncommitted edits included), written through a private copy of the
index so the checkout's index is never touched. Two trees with the same content have the same
hash wherever they are checked out, so a junit report names exactly the sources it verified and
`qms check` refuses it for any other tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class TreeHashError(RuntimeError):
    """The folder is not a git working tree, or git failed."""


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True,
                              text=True, check=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise TreeHashError(f"git {args[0]} failed in {repo}: {detail.strip()}") from None
    return done.stdout.strip()


def working_tree_hash(repo: Path) -> str:
    """Git's tree id of the working tree under `repo` as it stands now."""
    index = Path(_git(repo, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    with tempfile.TemporaryDirectory(prefix="dc-tree-") as scratch:
        private = Path(scratch) / "index"
        if index.is_file():  # its stat cache spares re-hashing unchanged files
            shutil.copyfile(index, private)
        env = os.environ | {"GIT_INDEX_FILE": str(private)}
        _git(repo, "add", "--all", "--", ".", env=env)
        return _git(repo, "write-tree", env=env)
