"""YAML quality records with line numbers: every problem a check finds names its file and line.

`YamlDocument.load(path)` keeps the text, the parsed data and the node tree; `line(loc)` maps a
location (keys and list indexes, as pydantic reports them) to the line it starts on.
`validate_list` validates the records under one top-level key and reports each schema error as
a `Problem` at its own line, instead of stopping at the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from digital_contrast.config import REPO_ROOT
from digital_contrast.yaml_lines import SAFE_LOADER, Loc, YamlLines

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True, order=True)
class Problem:
    """One gap or error in the records: where, and what is wrong, in a reviewer's words."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}{f':{self.line}' if self.line else ''}: {self.message}"


def display_path(path: Path) -> str:
    """The path relative to the repository when it lies inside it (stable in reports)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class YamlDocument:
    path: Path
    text: str
    data: Any

    @classmethod
    def load(cls, path: Path) -> tuple[YamlDocument | None, list[Problem]]:
        """The document, or None with the problem (missing file, not YAML)."""
        name = display_path(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            return None, [Problem(name, None, f"cannot be read ({exc.strerror or exc})")]
        try:
            data = yaml.load(text, Loader=SAFE_LOADER)  # a safe loader (libyaml where present)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            return None, [Problem(name, mark.line + 1 if mark else None,
                                  f"not valid YAML: {getattr(exc, 'problem', None) or exc}")]
        return cls(Path(path), text, data), []

    @classmethod
    def load_as(cls, path: Path, model: type[T]
                ) -> tuple[YamlDocument | None, T | None, list[Problem]]:
        """A one-record file: the document, its content as `model` (None when either cannot be
        had), and every problem at its line."""
        doc, problems = cls.load(path)
        if doc is None:
            return None, None, problems
        record, problems = doc.validate((), doc.data, model)
        return doc, record, problems

    @property
    def name(self) -> str:
        return display_path(self.path)

    @cached_property
    def _lines(self) -> YamlLines:
        return YamlLines(self.text)

    def line(self, loc: Loc) -> int | None:
        """The line of the deepest node of `loc` that exists (1-based)."""
        return self._lines.line(loc)

    def problem(self, loc: Loc, message: str) -> Problem:
        return Problem(self.name, self.line(loc), message)

    def validate(self, loc: Loc, data: Any, model: type[T]) -> tuple[T | None, list[Problem]]:
        """`data` (found at `loc`) as `model`, or None with every schema error at its line."""
        try:
            return model.model_validate(data), []
        except ValidationError as exc:
            return None, [self.problem(loc + tuple(e["loc"]), _message(e)) for e in exc.errors()]

    def validate_list(self, key: str, model: type[T]) -> tuple[list[T], list[Problem]]:
        """The records of the top-level list `key`, each validated on its own."""
        rows = self.data.get(key) if isinstance(self.data, dict) else None
        if not isinstance(rows, list):
            return [], [self.problem((), f"expected a top-level '{key}:' list")]
        records: list[T] = []
        problems: list[Problem] = []
        for index, row in enumerate(rows):
            record, found = self.validate((key, index), row, model)
            problems += found
            if record is not None:
                records.append(record)
        return records, problems


def _message(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def duplicates(doc: YamlDocument, key: str, ids: list[str], what: str) -> list[Problem]:
    """A problem at each repeated id of the list `key` (its second and later occurrences)."""
    seen: set[str] = set()
    problems = []
    for index, rid in enumerate(ids):
        if rid in seen:
            problems.append(doc.problem((key, index, "id"), f"duplicate {what} id {rid}"))
        seen.add(rid)
    return problems
