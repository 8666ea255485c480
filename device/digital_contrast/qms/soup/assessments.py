"""`qms/soup.yaml`: the assessment of each direct dependency and vendored library (IEC 62304
5.3.3, 5.3.4, 7.1.2), its schema and its loader."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from packaging.utils import canonicalize_name
from pydantic import Field, StringConstraints, model_validator

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.qms.records import QMS_DIR
from digital_contrast.qms.requirements import SoftwareItemId, Text
from digital_contrast.qms.yaml_records import Problem, YamlDocument

SOUP_FILE = QMS_DIR / "soup.yaml"


class Anomaly(FrozenSchema):
    id: Text  # advisory / issue id, or a one-line summary
    relevance: Text  # does the code path we use reach it?
    assessment: Text  # what follows for the device


class SoupItem(FrozenSchema):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    version: Annotated[str, StringConstraints(min_length=1)]
    ecosystem: Literal["pypi", "npm"] = "pypi"
    supplier: Text
    licence: Text
    purpose: Text
    software_items: list[SoftwareItemId] = Field(min_length=1)
    requirements: list[Text] = Field(min_length=1)  # functional and performance (5.3.3)
    hardware_and_software_needed: Text | None = None  # 5.3.4
    anomaly_source: Annotated[str, StringConstraints(pattern=r"^https://\S+$")]
    anomalies_reviewed: date
    anomalies: list[Anomaly]  # 7.1.2 c)
    assessment_note: Text | None = None
    failure_control: Text  # how a failure of it is detected or contained

    @model_validator(mode="after")
    def _reviewed_somehow(self) -> SoupItem:
        if not self.anomalies and not self.assessment_note:
            raise ValueError("an empty anomalies list needs an assessment_note saying what "
                             "was reviewed")
        return self


@dataclass(frozen=True)
class SoupFile:
    doc: YamlDocument
    items: list[tuple[int, SoupItem]]  # (index in `direct:`, entry), valid entries only

    def by_name(self) -> dict[str, tuple[int, SoupItem]]:
        found: dict[str, tuple[int, SoupItem]] = {}
        for index, item in self.items:
            found.setdefault(canonicalize_name(item.name), (index, item))
        return found


def load_soup(path: Path = SOUP_FILE) -> tuple[SoupFile | None, list[Problem]]:
    """The assessments with every schema problem at its line (None when not YAML at all)."""
    doc, problems = YamlDocument.load(path)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("direct"), list):
        return None, [doc.problem((), "expected a top-level 'direct:' list")]
    problems += [doc.problem((key,), f"unknown top-level key {key!r}")
                 for key in doc.data if key != "direct"]
    items: list[tuple[int, SoupItem]] = []
    seen: set[str] = set()
    for index, row in enumerate(doc.data["direct"]):
        item, found = doc.validate(("direct", index), row, SoupItem)
        problems += found
        if item is None:
            continue
        if (key := canonicalize_name(item.name)) in seen:
            problems.append(doc.problem(("direct", index, "name"),
                                        f"duplicate SOUP entry {item.name}"))
        seen.add(key)
        items.append((index, item))
    return SoupFile(doc, items), problems
