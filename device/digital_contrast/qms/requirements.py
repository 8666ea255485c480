"""Schema and loader for user needs (UN-NNN) and software requirements (SRS-<AREA>-NNN).

One record per requirement, child -> parent links, and cross-record checks that report every
gap at once instead of stopping at the first.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.qms.records import QMS_DIR, QmsRecordError
from digital_contrast.qms.yaml_records import Problem, YamlDocument, duplicates

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


class VerificationMethod(StrEnum):
    """How a requirement is verified (not whether it was: that is a test run's outcome)."""

    TEST = "test"
    INSPECTION = "inspection"
    ANALYSIS = "analysis"
    DEMONSTRATION = "demonstration"


class UserNeed(FrozenSchema):
    id: UserNeedId
    title: Text
    statement: Text
    users: list[Text] = Field(min_length=1)


class SoftwareItem(FrozenSchema):
    id: SoftwareItemId
    name: Text
    package: Annotated[str, StringConstraints(pattern=r"^digital_contrast(\.[a-z_]+)*$")]
    parent: SoftwareItemId | None = None
    safety_class: Literal["A", "B", "C"]
    safety_class_rationale: Text
    sources: list[Text] = Field(min_length=1)  # globs from the repository root
    interfaces: list[Text] = Field(min_length=1)
    may_use: list[SoftwareItemId] = Field(default_factory=list)  # items it may import


class SoftwareRequirement(FrozenSchema):
    id: RequirementId
    title: Text
    statement: Text
    category: Category
    parents: list[UserNeedId] = Field(default_factory=list)
    derived: bool = False
    rationale: Text | None = None
    software_items: list[SoftwareItemId] = Field(min_length=1)
    risk_control: bool
    verification: VerificationMethod

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


@dataclass
class Records:
    """The requirement records as loaded (valid entries only) with their documents."""

    needs: dict[str, UserNeed] = field(default_factory=dict)
    requirements: dict[str, SoftwareRequirement] = field(default_factory=dict)
    items: dict[str, SoftwareItem] = field(default_factory=dict)
    documents: dict[str, YamlDocument] = field(default_factory=dict)

    def requirement_problem(self, rid: str, loc: tuple[str | int, ...], message: str
                            ) -> Problem:
        doc = self.documents["requirements"]
        index = next((i for i, row in enumerate(doc.data.get("requirements", []))
                      if isinstance(row, dict) and row.get("id") == rid), None)
        return doc.problem(("requirements", index, *loc) if index is not None else (), message)


def _load(path: Path, key: str, model: type[Any], what: str, records: Records,
          slot: str) -> tuple[dict[str, Any], list[Problem]]:
    doc, problems = YamlDocument.load(path)
    if doc is None:
        return {}, problems
    records.documents[slot] = doc
    rows, problems = doc.validate_list(key, model)
    problems += duplicates(doc, key, [r.get("id") for r in doc.data.get(key, [])
                                      if isinstance(r, dict)], what)
    return {r.id: r for r in rows}, problems


def load_records(qms_dir: Path) -> tuple[Records, list[Problem]]:
    records = Records()
    records.needs, problems = _load(qms_dir / "requirements" / "user_needs.yaml", "user_needs",
                                    UserNeed, "user need", records, "needs")
    records.requirements, found = _load(
        qms_dir / "requirements" / "software_requirements.yaml", "requirements",
        SoftwareRequirement, "requirement", records, "requirements")
    problems += found
    records.items, found = _load(qms_dir / "software_items.yaml", "software_items",
                                 SoftwareItem, "software item", records, "items")
    return records, problems + found


def load_requirements(qms_dir: Path = QMS_DIR) -> RequirementSet:
    """Load and cross-check user needs, software requirements and the software items they name;
    every problem is reported at once (QmsRecordError)."""
    records, problems = load_records(qms_dir)
    messages = [str(p) for p in problems]
    for req in records.requirements.values():
        messages += [f"{req.id}: unknown parent {p}" for p in req.parents
                     if p not in records.needs]
        messages += [f"{req.id}: unknown software item {s}"
                     for s in req.software_items if s not in records.items]
    if messages:
        raise QmsRecordError(detail="; ".join(messages))
    return RequirementSet(user_needs=records.needs, requirements=records.requirements,
                          software_items=records.items)
