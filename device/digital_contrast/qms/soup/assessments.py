"""`qms/soup.yaml`: the assessment of each direct dependency, vendored library and platform
component (IEC 62304 5.3.3, 5.3.4, 7.1.2, 8.1.2), its schema and its loader. The known-anomaly
reviews are records of their own (`reviews.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from packaging.utils import canonicalize_name
from pydantic import Field, StringConstraints, model_validator

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.qms.records import QMS_DIR
from digital_contrast.qms.requirements import SoftwareItemId, Text
from digital_contrast.qms.yaml_records import Problem, YamlDocument

SOUP_FILE = QMS_DIR / "soup.yaml"


class Support(FrozenSchema):
    """Whether the supplier still fixes this release line, on what basis, as judged when."""

    status: Literal["supported", "end-of-life", "unknown"]
    until: date | None = None  # end of the supplier's (security) support, when one is declared
    basis: Text  # the declared policy or cadence relied upon, or why the status is unknown
    assessed: date

    @model_validator(mode="after")
    def _dated(self) -> Support:
        if self.status == "supported" and self.until is None:
            raise ValueError("status supported needs `until`, the end of support it relies on")
        return self


class _Assessed(FrozenSchema):
    """The fields every SOUP item carries, library or platform component."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    version: Annotated[str, StringConstraints(min_length=1)]
    supplier: Text
    licence: Text
    purpose: Text
    software_items: list[SoftwareItemId] = Field(min_length=1)
    requirements: list[Text] = Field(min_length=1)  # functional and performance (5.3.3)
    hardware_and_software_needed: Text | None = None  # 5.3.4
    anomaly_source: Annotated[str, StringConstraints(pattern=r"^https://\S+$")]
    support: Support
    assessment_note: Text | None = None  # anything beyond anomalies (a licence finding, ...)
    failure_control: Text  # how a failure of it is detected or contained


class SoupItem(_Assessed):
    """A direct runtime dependency (PyPI) or a vendored front-end library (npm)."""

    ecosystem: Literal["pypi", "npm"] = "pypi"


class PlatformItem(_Assessed):
    """A component of the runtime platform: interpreter, OS, Debian package, server."""

    kind: Literal["interpreter", "library", "os", "deb", "server"]
    # runtime: the device runs on it; production: a server of a multi-process installation;
    # test: needed by the verification only (`make test`).
    use: list[Literal["runtime", "production", "test"]] = Field(min_length=1)


@dataclass(frozen=True)
class SoupFile:
    doc: YamlDocument
    items: list[tuple[int, SoupItem]]  # (index in `direct:`, entry), valid entries only
    platform: list[tuple[int, PlatformItem]] = field(default_factory=list)  # in `platform:`

    def by_name(self) -> dict[str, tuple[int, SoupItem]]:
        found: dict[str, tuple[int, SoupItem]] = {}
        for index, item in self.items:
            found.setdefault(canonicalize_name(item.name), (index, item))
        return found

    def all_items(self) -> list[tuple[tuple[str, int], SoupItem | PlatformItem]]:
        """Every assessed item with its location ((section, index)): direct, then platform."""
        return ([(("direct", i), item) for i, item in self.items]
                + [(("platform", i), item) for i, item in self.platform])


def load_soup(path: Path = SOUP_FILE) -> tuple[SoupFile | None, list[Problem]]:
    """The assessments with every schema problem at its line (None when not YAML at all)."""
    doc, problems = YamlDocument.load(path)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("direct"), list):
        return None, [doc.problem((), "expected a top-level 'direct:' list")]
    problems += [doc.problem((key,), f"unknown top-level key {key!r}")
                 for key in doc.data if key not in ("direct", "platform")]
    platform_rows = doc.data.get("platform", [])
    if not isinstance(platform_rows, list):
        problems.append(doc.problem(("platform",), "expected 'platform:' to be a list"))
        platform_rows = []
    seen: set[str] = set()
    sections: dict[str, list[tuple[int, Any]]] = {"direct": [], "platform": []}
    for section, rows, schema in (("direct", doc.data["direct"], SoupItem),
                                  ("platform", platform_rows, PlatformItem)):
        for index, row in enumerate(rows):
            item, found = doc.validate((section, index), row, schema)
            problems += found
            if item is None:
                continue
            if (key := canonicalize_name(item.name)) in seen:
                problems.append(doc.problem((section, index, "name"),
                                            f"duplicate SOUP entry {item.name}"))
            seen.add(key)
            sections[section].append((index, item))
    return SoupFile(doc, sections["direct"], sections["platform"]), problems
