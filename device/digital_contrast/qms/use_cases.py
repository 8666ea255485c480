"""Every use case is complete: a validation protocol for it, a risk review
(`risk/usecases/<id>.yaml`) and its section in the instructions for use.

A use case is configuration, so nothing stops a definition file from reaching the catalogue
alone; this rule is what keeps the technical file whole when one is added.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from pydantic import Field

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.qms.yaml_records import Problem, YamlDocument, display_path
from digital_contrast.usecases import UseCase, use_cases
from digital_contrast.usecases.catalog import DEFINITIONS

RISK_REVIEWS = Path("risk") / "usecases"
IFU = Path("docs") / "instructions-for-use.md"


class RiskReview(FrozenSchema):
    """Which risks of the risk file apply to one use case, which it added, and the conclusion."""

    use_case: str
    reviewed: dt.date
    reviewed_by: str = Field(min_length=1)
    risks: list[str] = Field(min_length=1)
    added: list[str] = Field(default_factory=list)
    conclusion: str = Field(min_length=1)


def _words(text: str) -> str:
    return " ".join(text.split())


def ifu_sections(text: str) -> dict[str, str]:
    """`## <use case id>: ...` sections of the instructions for use, by id."""
    sections: dict[str, str] = {}
    for block in re.split(r"^(?=## )", text, flags=re.MULTILINE):
        found = re.match(r"## ([a-z][a-z0-9-]*):", block)
        if found:
            sections[found.group(1)] = block
    return sections


def _definition(use_case: UseCase) -> str:
    return display_path(DEFINITIONS / f"{use_case.id}.yaml")


def _protocol_problems(repo: Path, use_case: UseCase) -> list[str]:
    path = repo / use_case.validation_protocol
    doc, _ = YamlDocument.load(path)
    if doc is None:
        return [f"use case {use_case.id} has no validation protocol "
                f"({use_case.validation_protocol})"]
    named = doc.data.get("use_case") if isinstance(doc.data, dict) else None
    if named != use_case.id:
        return [f"the protocol of use case {use_case.id} ({use_case.validation_protocol}) is "
                f"for use case {named}"]
    return []


def _review_problems(repo: Path, use_case: UseCase, risks: set[str]) -> list[Problem]:
    path = repo / RISK_REVIEWS / f"{use_case.id}.yaml"
    if not path.is_file():
        return [Problem(_definition(use_case), None, f"use case {use_case.id} has no risk "
                        f"review ({RISK_REVIEWS / path.name})")]
    doc, review, problems = YamlDocument.load_as(path, RiskReview)
    if doc is None or review is None:
        return problems
    if review.use_case != use_case.id:
        problems.append(doc.problem(("use_case",), f"the risk review in {path.name} is for "
                                                   f"use case {review.use_case}"))
    problems += [doc.problem(("risks", i), f"risk review of {use_case.id}: unknown risk {r}")
                 for i, r in enumerate(review.risks) if r not in risks]
    problems += [doc.problem(("added", i), f"risk review of {use_case.id}: {r} is added but not "
                                           "among the risks that apply")
                 for i, r in enumerate(review.added) if r not in review.risks]
    return problems


def _ifu_problems(use_case: UseCase, sections: dict[str, str]) -> list[str]:
    section = sections.get(use_case.id)
    if section is None:
        return [f"use case {use_case.id} has no section in the instructions for use "
                f"({IFU}: '## {use_case.id}: ...')"]
    if use_case.notice and _words(use_case.notice) not in _words(section):
        return [f"the instructions for use of {use_case.id} do not state its notice "
                f"{use_case.notice!r}"]
    return []


def check_use_cases(repo: Path, risks: set[str]) -> list[Problem]:
    """Protocol, risk review and instructions for use of every use case."""
    ifu = repo / IFU
    sections = ifu_sections(ifu.read_text("utf-8")) if ifu.is_file() else {}
    catalogue = use_cases()
    problems: list[Problem] = []
    for use_case in catalogue.values():
        where = _definition(use_case)
        messages = _protocol_problems(repo, use_case) + _ifu_problems(use_case, sections)
        problems += [Problem(where, None, m) for m in messages]
        problems += _review_problems(repo, use_case, risks)
    reviews = repo / RISK_REVIEWS
    problems += [Problem(display_path(p), None, f"risk review of unknown use case {p.stem}")
                 for p in sorted(reviews.glob("*.yaml")) if p.stem not in catalogue]
    return problems
