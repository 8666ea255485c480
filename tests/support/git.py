"""Committing a file in a throwaway git repository (validation runs only committed protocols)."""

import subprocess
from pathlib import Path


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=test", "-c",
                           "user.email=test@example.invalid", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def commit_file(path: Path) -> str:
    """Commit `path` in the git repository of its folder (made there when there is none);
    returns the commit."""
    folder = path.parent
    if not (folder / ".git").exists():
        _git(folder, "init", "-q")
    _git(folder, "add", "--", path.name)
    _git(folder, "commit", "-q", "--allow-empty", "-m", f"protocol {path.name}")
    return _git(folder, "rev-parse", "HEAD")
