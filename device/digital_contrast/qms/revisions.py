"""Revision history of a document: generated documents take theirs from the git history of the
records they are generated from; hand-written process documents (docs/qms/*.md) keep theirs in a
"Revision history" section that `qms check` requires.

A generated document's history is a function of the checkout alone (the commits that touched its
source records, newest first, and whether the working tree changes them), so two renderings of
one checkout carry the same history. Without git metadata the document says so rather than
inventing one.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.yaml_records import Problem

NO_GIT = "revision history unavailable: no git metadata"
SHALLOW = ("history truncated: a shallow clone, older commits are missing and rN counts only "
           "the commits present")
SHOWN = 15  # newest revisions listed; the rest are counted and named by the command to list them
PROCESS_DOCS = "docs/qms"
SECTION = "Revision history"
# One field separator git never puts in a subject line.
_FIELDS = "%x1f".join(("%H", "%cs", "%s"))
_HEADING = re.compile(rf"^#+\s+(?:\d+(?:\.\d+)*\.?\s+)?{SECTION}\s*$", re.MULTILINE)
_ROW = re.compile(r"^\|\s*([^|\s][^|]*?)\s*\|\s*(\d{4}-\d{2}-\d{2})\s*\|\s*([^|\s][^|]*?)\s*\|\s*$",
                  re.MULTILINE)


@dataclass(frozen=True)
class Revision:
    """One revision: `version` is rN (the Nth commit, merges aside, touching the sources) with its
    short hash."""

    version: str
    date: str  # ISO date of the commit
    summary: str  # the commit's subject line


@dataclass(frozen=True)
class RevisionHistory:
    """The newest revisions of a document's sources; `unavailable` says why there are none."""

    sources: list[str]
    revisions: list[Revision] = field(default_factory=list)
    earlier: int = 0  # revisions older than those listed
    uncommitted: list[str] = field(default_factory=list)  # sources changed in the working tree
    unavailable: str | None = None
    truncated: str | None = None  # why older commits are missing (a shallow clone)

    @property
    def command(self) -> str:
        """The command that lists the whole history."""
        return "git log --no-merges -- " + " ".join(self.sources)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "command": self.command}


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):  # no git installed, or a hung repository
        return None


def revision_history(sources: Sequence[str | Path], repo: Path = REPO_ROOT, *,
                     shown: int = SHOWN) -> RevisionHistory:
    """The git history of `sources` (paths from the repository root, files or folders)."""
    names = [str(s) for s in sources]
    inside = _git(repo, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.returncode != 0 or inside.stdout.strip() != "true":
        return RevisionHistory(names, unavailable=NO_GIT)
    # Merges are left out: their changes are the commits listed, their subjects name branches.
    log = _git(repo, "log", "--no-merges", f"--format={_FIELDS}", "--", *names)
    if log is None or log.returncode != 0:
        reason = (log.stderr.strip().splitlines() or ["git log failed"])[0] if log else "git"
        reason = reason.removeprefix("fatal: ")
        return RevisionHistory(names, unavailable=f"revision history unavailable: {reason}")
    commits = [line.split("\x1f", 2) for line in log.stdout.splitlines() if line]
    revisions = [Revision(f"r{len(commits) - k} ({sha[:7]})", date, subject)
                 for k, (sha, date, subject) in enumerate(commits[:shown])]
    status = _git(repo, "status", "--porcelain", "--untracked-files=no", "--", *names)
    changed = sorted(line[3:] for line in status.stdout.splitlines()) if status else []
    if not commits:
        return RevisionHistory(names, uncommitted=changed,
                               unavailable="revision history unavailable: no commit touches "
                                           + ", ".join(names))
    shallow = _git(repo, "rev-parse", "--is-shallow-repository")
    truncated = SHALLOW if shallow and shallow.stdout.strip() == "true" else None
    return RevisionHistory(names, revisions, max(0, len(commits) - shown), changed,
                           truncated=truncated)


def check_process_docs(repo: Path = REPO_ROOT) -> list[Problem]:
    """Each docs/qms/*.md has a "Revision history" section with at least one row
    `| version | YYYY-MM-DD | change |`."""
    problems = []
    for path in sorted((repo / PROCESS_DOCS).glob("*.md")):
        text = path.read_text(encoding="utf-8")
        name = f"{PROCESS_DOCS}/{path.name}"
        heading = _HEADING.search(text)
        if heading is None:
            problems.append(Problem(name, None, f'has no "{SECTION}" section (a table '
                                                "| version | date | change |)"))
            continue
        body = text[heading.end():]
        following = re.search(r"^#+\s", body, re.MULTILINE)
        rows = _ROW.findall(body[:following.start()] if following else body)
        if not rows:
            line = text[:heading.start()].count("\n") + 1
            problems.append(Problem(name, line, f'its "{SECTION}" section has no entry '
                                                "(a row | version | YYYY-MM-DD | change |)"))
    return problems
