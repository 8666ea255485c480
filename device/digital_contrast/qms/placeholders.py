"""Placeholders are not records: `TBD`, `TODO`, an empty value, in any record of the technical
file or any guide it cites, is reported at its line.

A record that says `benefit_risk: TBD` validates against every schema (it is a string of three
letters), so the rule runs over the raw records, not over their schemas: every string, number
and null in every YAML record, and every line of the Markdown guides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digital_contrast.qms.yaml_records import Problem, YamlDocument, display_path

# The records of the technical file (YAML) and the guides (Markdown), from the repository root.
RECORDS = ("qms/**/*.yaml", "risk/**/*.yaml", "validation/protocols/*.yaml",
           "device/digital_contrast/usecases/definitions/*.yaml",
           "device/digital_contrast/carbon/factors/*.yaml", "training/*/training.yaml")
GUIDES = ("README.md", "docs/**/*.md")

# Upper-case markers as words anywhere; the spelled-out forms only as a whole value.
_MARKER = re.compile(r"\b(TBD|TBC|TODO|FIXME)\b")
_WHOLE = re.compile(r"(to be (defined|determined|decided|confirmed|completed|written)|"
                    r"n/?a|none yet|placeholder|\?+|\.\.\.|-+)[.!]?", re.IGNORECASE)


def placeholder(value: str) -> str | None:
    """Why `value` is a placeholder, or None when it is content."""
    text = value.strip()
    if not text:
        return "is empty"
    if _WHOLE.fullmatch(text):
        return f"is a placeholder ({text!r})"
    found = _MARKER.search(text)
    return f"holds the placeholder {found.group(1)}" if found else None


Loc = tuple[str | int, ...]


def _leaves(data: Any, loc: Loc = (), name: str = "") -> Iterator[tuple[Loc, str, Any]]:
    """(location, readable name, value) of every scalar; a list entry with an `id` (or a
    `name`) is named by it (`SRS-IMG-001.statement`), not by its index."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*loc, key), f"{name}.{key}" if name else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            label = (value.get("id") or value.get("name")) if isinstance(value, dict) else None
            yield from _leaves(value, (*loc, index),
                               str(label) if label else f"{name}[{index}]")
    else:
        yield loc, name or "the document", data


def _files(repo: Path, patterns: tuple[str, ...]) -> list[Path]:
    return sorted({p for pattern in patterns for p in repo.glob(pattern) if p.is_file()})


def check_placeholders(repo: Path) -> list[Problem]:
    problems: list[Problem] = []
    for path in _files(repo, RECORDS):
        doc, found = YamlDocument.load(path)
        if doc is None:
            continue  # unreadable: the check that owns the record reports it
        for loc, where, value in _leaves(doc.data):
            if value is None:
                problems.append(doc.problem(loc, f"{where} is empty"))
            elif isinstance(value, str) and (why := placeholder(value)):
                problems.append(doc.problem(loc, f"{where} {why}"))
    for path in _files(repo, GUIDES):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if found := _MARKER.search(line):
                problems.append(Problem(display_path(path), number,
                                        f"holds the placeholder {found.group(1)}"))
    return problems
