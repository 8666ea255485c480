"""`digital-contrast qms mutate`: proof that `qms check` catches what it claims to catch.

Each mutation of qms/mutations.py seeds one fault into a private copy of the working tree (or
into the evidence of the test run) and runs the whole check on it; the mutation is caught when
a reported problem matches the reason it names. The copy is checked before any fault is seeded
and must have no problem at all, so a mutation can only be caught by its own fault; after each
one its edits are undone. A check rule without a mutation is a rule nobody has seen fail.

The test run's report stays the one `make test` wrote. Every mutation but the stale-report one
is checked as if the tests had run again on the mutated sources with the same outcomes (the
report is re-bound to the copy's tree): a fault that a fresh test run would not reveal is
exactly what the check itself must catch.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digital_contrast.qms.check import run_checks
from digital_contrast.qms.junit_report import TestRun
from digital_contrast.qms.tree import TreeHashError, working_tree_hash
from digital_contrast.qms.yaml_records import Problem


class MutationError(RuntimeError):
    """The catalogue or the copy cannot be used: a seed no longer applies, the copy is not clean
    before seeding, or git is missing."""


class Workspace:
    """A copy of the working tree whose edits are recorded so that `restore()` undoes them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._saved: dict[Path, bytes | None] = {}

    def path(self, relative: str) -> Path:
        return self.root / relative

    def _save(self, path: Path) -> None:
        if path not in self._saved:
            self._saved[path] = path.read_bytes() if path.exists() else None

    def write(self, relative: str, text: str) -> None:
        path = self.path(relative)
        self._save(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def sub(self, relative: str, pattern: str, replacement: str) -> None:
        """Replace the first match of `pattern` (multiline regex); a pattern that matches nothing
        means the catalogue has drifted from the records, never a silently skipped fault."""
        text = self.path(relative).read_text(encoding="utf-8")
        new, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
        if count == 0:
            raise MutationError(f"{relative}: {pattern!r} matches nothing: the mutation no "
                                "longer applies to the records, update qms/mutations.py")
        self.write(relative, new)

    def remove(self, relative: str) -> None:
        path = self.path(relative)
        self._save(path)
        path.unlink()

    def append(self, relative: str, text: str) -> None:
        self.write(relative, self.path(relative).read_text(encoding="utf-8") + text)

    def restore(self) -> None:
        for path, content in self._saved.items():
            if content is None:
                path.unlink(missing_ok=True)
                for parent in path.parents:  # folders the seed made
                    if parent == self.root or any(parent.iterdir()):
                        break
                    parent.rmdir()
            else:
                path.write_bytes(content)
        self._saved.clear()


@dataclass(frozen=True)
class Mutation:
    """One seeded fault and the reason `qms check` must give for it."""

    id: str
    fault: str  # what is seeded, in a reviewer's words
    expect: str  # a regex one reported problem must match
    seed: Callable[[Workspace], None] | None = None  # edits to the copy
    evidence: Callable[[TestRun], TestRun] | None = None  # edits to the test run's report
    closure: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # the installed closure
    stale_report: bool = False  # keep the report bound to the unmutated tree


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    caught_by: str | None  # the problem whose message matched, its path from the tree's root
    problems: int  # how many the check reported

    @property
    def caught(self) -> bool:
        return self.caught_by is not None


Check = Callable[[TestRun, Path, dict[str, Any]], list[Problem]]


def _files(repo: Path) -> list[str]:
    """What git would commit: tracked and new files, ignored ones left out."""
    try:
        done = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                               "--exclude-standard"], cwd=repo, capture_output=True,
                              check=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise MutationError(f"cannot list the files of {repo}: {exc}") from None
    return [name for name in done.stdout.decode("utf-8").split("\0") if name]


@contextmanager
def tree_copy(repo: Path) -> Iterator[Path]:
    """A private copy of the working tree, a git working tree of its own (so that its tree
    hash is computed like the original's), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="dc-mutate-") as scratch:
        root = Path(scratch) / "tree"
        for name in _files(repo):
            source = repo / name
            if source.is_file():  # a deleted-but-tracked file is not part of the tree
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        subprocess.run(["git", "init", "-q", str(root)], check=True, capture_output=True)
        # An index of its own: every later tree hash re-reads only the files a seed touched.
        subprocess.run(["git", "add", "--all"], cwd=root, check=True, capture_output=True)
        yield root


def checker(commands: set[str]) -> Check:
    """The whole `qms check`, as `make test` runs it."""
    def check(run: TestRun, repo: Path, closure: dict[str, Any]) -> list[Problem]:
        return run_checks(run, commands=commands, repo=repo, closure=closure).problems
    return check


def _bound(run: TestRun, repo: Path) -> TestRun:
    try:
        tree = working_tree_hash(repo)
    except TreeHashError as exc:
        raise MutationError(str(exc)) from None
    return dataclasses.replace(run, tree=tree, tree_at_end=tree)


def run_mutations(repo: Path, run: TestRun, mutations: list[Mutation], check: Check,
                  closure: dict[str, Any],
                  progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Check the copy clean, then each mutation in turn; MutationError when the copy is not
    clean before seeding or a seed no longer applies."""
    with tree_copy(repo) as root:
        clean = _bound(run, root)
        baseline = check(clean, root, closure)
        if baseline:
            raise MutationError(f"the unmutated tree already has {len(baseline)} problem(s), "
                                f"e.g. {baseline[0]}: run `qms check` and fix them first")
        workspace = Workspace(root)
        outcomes = []
        for mutation in mutations:
            try:
                if mutation.seed is not None:
                    mutation.seed(workspace)
                evidence = clean if mutation.stale_report else _bound(run, root)
                if mutation.evidence is not None:
                    evidence = mutation.evidence(evidence)
                state = mutation.closure(dict(closure)) if mutation.closure else closure
                problems = check(evidence, root, state)
            finally:
                workspace.restore()
            pattern = re.compile(mutation.expect)
            messages = (str(p).replace(f"{root}/", "") for p in problems)
            outcome = Outcome(mutation, next((m for m in messages if pattern.search(m)), None),
                              len(problems))
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        return outcomes
