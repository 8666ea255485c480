"""Schema and loader for user needs (UN-NNN) and software requirements (SRS-<AREA>-NNN).

One record per requirement, child -> parent links, and cross-record checks that report every
gap at once instead of stopping at the first.
"""

from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from digital_contrast.qms.records import QMS_DIR, RecordError

T = TypeVar("T", bound=BaseModel)

UserNeedId = Annotated[str, StringConstraints(pattern=r"^UN-\d{3}$")]
RequirementId = Annotated[str, StringConstraints(pattern=r"^SRS-[A-Z]{2,6}-\d{3}$")]
SoftwareItemId = Annotated[str, StringConstraints(pattern=r"^SI-[A-Z0-9-]+$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3)]


class Category(StrEnum):
    """Software requirement content, IEC 62304:2006+A1:2015 clause 5.2.2 a) to l)."""

    FUNCTIONAL = "functional"  # a) functional and capability
    INPUTS_OUTPUTS = "inputs-outputs"  # b) software system inputs and outputs
    INTERFACES = "interfaces"  # c) interfaces between the software system and other systems
    ALARMS = "alarms-warnings"  # d) software-driven alarms, warnings and operator messages
    SECURITY = "security"  # e) security
    USABILITY = "usability"  # f) user interface implemented by software
    DATA = "data-definition"  # g) data definition and database
    INSTALLATION = "installation-acceptance"  # h) installation and acceptance
    OPERATION = "operation-maintenance"  # i) methods of operation and maintenance
    NETWORK = "it-network"  # j) IT-network aspects
    USER_MAINTENANCE = "user-maintenance"  # k) user maintenance
    REGULATORY = "regulatory"  # l) regulatory requirements


class Verification(StrEnum):
    TEST = "test"
    INSPECTION = "inspection"
    ANALYSIS = "analysis"
    DEMONSTRATION = "demonstration"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserNeed(_Record):
    id: UserNeedId
    title: Text
    statement: Text
    users: list[Text] = Field(min_length=1)


class SoftwareItem(_Record):
    id: SoftwareItemId
    name: Text
    package: Annotated[str, StringConstraints(pattern=r"^digital_contrast(\.[a-z_]+)*$")]
    parent: SoftwareItemId | None = None
    safety_class: Literal["A", "B", "C"]
    safety_class_rationale: Text
    sources: list[Text] = Field(min_length=1)  # globs from the repository root
    interfaces: list[Text] = Field(min_length=1)
    may_use: list[SoftwareItemId] = Field(default_factory=list)  # items it may import


class SoftwareRequirement(_Record):
    id: RequirementId
    title: Text
    statement: Text
    category: Category
    parents: list[UserNeedId] = Field(default_factory=list)
    derived: bool = False
    rationale: Text | None = None
    software_items: list[SoftwareItemId] = Field(min_length=1)
    risk_control: bool
    verification: Verification

    @model_validator(mode="after")
    def _traced_or_derived(self) -> "SoftwareRequirement":
        if self.derived and not self.rationale:
            raise ValueError("a derived requirement needs a rationale")
        if not self.derived and not self.parents:
            raise ValueError("needs parent user needs, or derived: true with a rationale")
        return self


class RequirementSet(BaseModel):
    user_needs: dict[str, UserNeed]
    requirements: dict[str, SoftwareRequirement]
    software_items: dict[str, SoftwareItem]


def _load_list(path: Path, key: str, model: type[T]) -> list[T]:
    if not path.is_file():
        raise RecordError(detail=f"{path}: file missing")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RecordError(detail=f"{path}: not valid YAML ({exc})") from None
    rows = data.get(key) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise RecordError(detail=f"{path}: expected a top-level '{key}:' list")
    records, problems = [], []
    for index, row in enumerate(rows):
        try:
            records.append(model.model_validate(row))
        except ValidationError as exc:
            where = row.get("id", f"#{index}") if isinstance(row, dict) else f"#{index}"
            problems.append(f"{path.name} {where}: {exc.errors()[0]['msg']} "
                            f"at {'.'.join(map(str, exc.errors()[0]['loc']))}")
    if problems:
        raise RecordError(detail="; ".join(problems))
    return records


def _index(records: Iterable[T], what: str) -> dict[str, T]:
    index: dict[str, T] = {}
    for record in records:
        rid = record.id  # type: ignore[attr-defined]
        if rid in index:
            raise RecordError(detail=f"duplicate {what} id {rid}")
        index[rid] = record
    return index


def load_requirements(qms_dir: Path = QMS_DIR) -> RequirementSet:
    """Load and cross-check user needs, software requirements and the software items they name."""
    needs = _index(_load_list(qms_dir / "requirements" / "user_needs.yaml", "user_needs",
                              UserNeed), "user need")
    reqs = _index(_load_list(qms_dir / "requirements" / "software_requirements.yaml",
                             "requirements", SoftwareRequirement), "requirement")
    items = _index(_load_list(qms_dir / "software_items.yaml", "software_items", SoftwareItem),
                   "software item")
    problems = []
    for req in reqs.values():
        problems += [f"{req.id}: unknown parent {p}" for p in req.parents if p not in needs]
        problems += [f"{req.id}: unknown software item {s}"
                     for s in req.software_items if s not in items]
    if problems:
        raise RecordError(detail="; ".join(problems))
    return RequirementSet(user_needs=needs, requirements=reqs, software_items=items)
