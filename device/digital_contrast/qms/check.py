"""`digital-contrast qms check`: every gap in the technical file, each with its file and line.

Runs the schema and cross-reference checks of each record set (requirements and user needs,
software items and their sources, the device record, the clause map, the risk file, the SOUP
list) against the repository and the latest junit report, and returns the problems sorted by
file and line. No problem found means: the junit report ran on exactly this working tree, every
record is valid and free of placeholders, every reference resolves, every requirement verified
by test has a test that passed and every other verification a signed, current record, every
clause's evidence holds the content it is cited for, every risk control is implemented and
verified (or left open only by tests that document a known residual anomaly of
qms/anomalies.yaml, whose references and tests are checked too), no residual probability is
claimed below what its controls' evidence supports, the SOUP list matches the installed
runtime closure, every source module belongs to a software item, has a docstring and imports
(as read, and as seen while the tests ran) only the items its item may use (qms/design.py),
every process document of docs/qms/ keeps a revision history (qms/revisions.py), every use case
has its protocol, risk review and section of the instructions for use (qms/use_cases.py), and
every applicable clause is satisfied. Residual risks computed unacceptable, or ALARP without a
demonstrated benefit, are release blockers: listed apart (`CheckResult.blockers`), they do not
fail the check, and every release record states the overall residual risk conclusion they lead
to.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from digital_contrast.config import REPO_ROOT
from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.qms.architecture import check_architecture
from digital_contrast.qms.design import (
    check_design,
    check_observed_imports,
    read_detailed_design,
)
from digital_contrast.qms.junit_report import PASSED, TestRun
from digital_contrast.qms.placeholders import check_placeholders
from digital_contrast.qms.requirements import Records, load_records
from digital_contrast.qms.revisions import check_process_docs
from digital_contrast.qms.sources import source_files
from digital_contrast.qms.tree import TreeHashError, working_tree_hash
from digital_contrast.qms.use_cases import check_use_cases
from digital_contrast.qms.verification_records import check_verification_records
from digital_contrast.qms.yaml_records import Problem, YamlDocument, display_path, duplicates

PACKAGE_DIR = REPO_ROOT / "device" / "digital_contrast"


def check_references(records: Records) -> list[Problem]:
    problems = []
    for req in records.requirements.values():
        problems += [records.requirement_problem(req.id, ("parents",), f"{req.id}: unknown "
                                                 f"user need {p}")
                     for p in req.parents if p not in records.needs]
        problems += [records.requirement_problem(req.id, ("software_items",), f"{req.id}: "
                                                 f"unknown software item {s}")
                     for s in req.software_items if s not in records.items]
    if "needs" in records.documents:
        doc = records.documents["needs"]
        children = {p for r in records.requirements.values() for p in r.parents}
        problems += [doc.problem(("user_needs", i, "id"), f"user need {n} has no software "
                                                          "requirement")
                     for i, n in enumerate(records.needs) if n not in children]
    return problems


def check_binding(run: TestRun, repo: Path = REPO_ROOT) -> list[Problem]:
    """The report is evidence for these sources only if it ran on exactly this working tree
    (qms/tree.py) and no test changed it on the way."""
    where = display_path(Path(run.source))
    if run.tree is None:
        return [Problem(where, None, "the junit report names no tree it ran on (not written "
                                     "by `make test`'s requirement plugin): run `make test`")]
    if run.tree_at_end != run.tree:
        return [Problem(where, None, f"the sources changed during the test run (tree "
                                     f"{run.tree[:12]} at the start, "
                                     f"{(run.tree_at_end or 'none')[:12]} at the end)")]
    try:
        now = working_tree_hash(repo)
    except TreeHashError as exc:
        return [Problem(where, None, f"cannot tell which tree the junit report is for: {exc}")]
    if now != run.tree:
        return [Problem(where, None, f"the junit report ran on tree {run.tree[:12]}, but the "
                                     f"working tree is {now[:12]}: its results are not "
                                     "evidence for these sources; run `make test` again")]
    return []


def check_verification(records: Records, run: TestRun) -> list[Problem]:
    """Every requirement verified by test has a test that passed in the latest run; every test
    names known requirements."""
    tests = run.requirement_tests()
    problems = []
    for req in records.requirements.values():
        if req.verification != "test":
            continue
        outcomes = [run.cases[node].outcome for node in tests.get(req.id, [])]
        if not outcomes:
            problems.append(records.requirement_problem(
                req.id, ("id",), f"{req.id} is verified by test but no test names it"))
        elif PASSED not in outcomes:
            problems.append(records.requirement_problem(
                req.id, ("id",), f"{req.id}: none of its {len(outcomes)} test(s) passed in "
                                 f"the latest run ({run.source})"))
        elif "failed" in outcomes:
            problems.append(records.requirement_problem(
                req.id, ("id",), f"{req.id}: {outcomes.count('failed')} of its tests failed "
                                 "in the latest run"))
    for case in run.cases.values():
        problems += [Problem(case.node_id.split("::")[0], None,
                             f"{case.node_id} names unknown requirement {rid}")
                     for rid in case.requirements if rid not in records.requirements]
    return problems


def _subpackages(package_dir: Path) -> set[str]:
    return {".".join(("digital_contrast", *p.parent.relative_to(package_dir).parts))
            for p in package_dir.rglob("__init__.py")}


def check_items(records: Records, repo: Path = REPO_ROOT,
                package_dir: Path = PACKAGE_DIR) -> list[Problem]:
    """Items against the source tree: one item per (top-level) subpackage, every glob
    matching, every source module owned by exactly one item, parents known."""
    doc = records.documents.get("items")
    if doc is None:
        return []
    rows = doc.data.get("software_items", [])
    index = {row.get("id"): i for i, row in enumerate(rows) if isinstance(row, dict)}
    problems: list[Problem] = []
    owners: dict[str, list[str]] = {}
    for item in records.items.values():
        at = index[item.id]
        if item.parent is not None and item.parent not in records.items:
            problems.append(doc.problem(("software_items", at, "parent"),
                                        f"{item.id}: unknown parent item {item.parent}"))
        for k, pattern in enumerate(item.sources):
            matched = source_files(pattern, repo)
            if not matched:
                problems.append(doc.problem(("software_items", at, "sources", k),
                                            f"{item.id}: source glob {pattern!r} matches no "
                                            "file"))
            for path in matched:
                owners.setdefault(str(path.resolve().relative_to(repo)), []).append(item.id)
    packages = {item.package for item in records.items.values()}
    top_level = {p for p in _subpackages(package_dir) if p.count(".") <= 1}
    problems += [doc.problem((), f"subpackage {p} has no software item") for p in
                 sorted(top_level - packages)]
    problems += [doc.problem(("software_items", index[i.id], "package"),
                             f"{i.id}: package {i.package} does not exist")
                 for i in records.items.values() if i.package not in _subpackages(package_dir)]
    for path in sorted(package_dir.rglob("*.py")):
        relative = str(path.resolve().relative_to(repo))
        found = owners.get(relative, [])
        if not found:
            problems.append(Problem(relative, None, "source module belongs to no software "
                                                    "item (qms/software_items.yaml sources)"))
        elif len(found) > 1:
            problems.append(Problem(relative, None, f"source module is claimed by several "
                                                    f"software items: {', '.join(found)}"))
    return problems


class _Standard(FrozenSchema):
    id: str
    edition: str
    title: str


class Device(FrozenSchema):
    """qms/device.yaml."""

    product: str
    manufacturer: dict[str, str]
    device_description: str
    intended_use: str
    use_cases: list[str] = Field(min_length=1)
    intended_users: list[str] = Field(min_length=1)
    patient_population: str
    use_environment: str
    contraindications: list[str] = Field(min_length=1)
    evidence_statement: str
    software_safety_class: Literal["A", "B", "C"]
    software_safety_class_rationale: str
    regulatory_status: str
    standards: list[_Standard] = Field(min_length=1)


def check_device(path: Path, records: Records) -> list[Problem]:
    from digital_contrast.usecases import use_cases

    doc, device, problems = YamlDocument.load_as(path, Device)
    if doc is None or device is None:
        return problems
    known = set(use_cases())
    problems += [doc.problem(("use_cases", i), f"unknown use case {u}")
                 for i, u in enumerate(device.use_cases) if u not in known]
    problems += [doc.problem(("use_cases",), f"use case {u} is not listed")
                 for u in sorted(known - set(device.use_cases))]
    rows = records.documents["items"].data.get("software_items", []) \
        if "items" in records.documents else []
    for item in records.items.values():
        if device.software_safety_class == "C" and item.safety_class != "C":
            at = next(i for i, r in enumerate(rows) if r.get("id") == item.id)
            problems.append(records.documents["items"].problem(
                ("software_items", at, "safety_class"),
                f"{item.id} is class {item.safety_class} but no segregation is documented "
                "(qms/device.yaml): it keeps the system's class C"))
    return problems


class Reference(FrozenSchema):
    record: str | None = None
    command: str | None = None
    doc: str | None = None
    # What a record or guide must contain to be evidence for its clause (a heading, a key):
    # existence alone would let any file stand for any clause.
    holds: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one(self) -> Reference:
        if sum(v is not None for v in (self.record, self.command, self.doc)) != 1:
            raise ValueError("give exactly one of record, command, doc")
        return self


class OutsideEvidence(FrozenSchema):
    """A clause the manufacturer satisfies outside the software's technical file (its QMS):
    not a gap of this repository, but never silent either — `qms check` lists it and every
    release record names the evidence to attach and its status."""

    holder: str = Field(min_length=1)  # who keeps the evidence
    evidence: str = Field(min_length=1)  # what must be attached to a submission
    status: str = Field(min_length=1)  # where it stands today, in plain words


class Clause(FrozenSchema):
    clause: str
    title: str
    applicable: bool = True
    rationale: str | None = None
    satisfied_by: list[Reference] = Field(default_factory=list)
    outside_repository: OutsideEvidence | None = None
    gap: str | None = None

    @model_validator(mode="after")
    def _mapped(self) -> Clause:
        if not self.applicable and not self.rationale:
            raise ValueError("a clause that does not apply needs a rationale")
        if self.applicable and not (self.satisfied_by or self.outside_repository or self.gap):
            raise ValueError("an applicable clause needs satisfied_by, outside_repository or "
                             "an explicit gap")
        return self


class ClauseMap(FrozenSchema):
    standard: str
    safety_class: Literal["A", "B", "C"]
    clauses: list[Clause]


# Clauses of IEC 62304 that apply to class C; each must appear in the map.
REQUIRED_CLAUSES = ("4.1", "4.2", "4.3", *(f"5.1.{k}" for k in range(1, 13)),
                    *(f"5.2.{k}" for k in range(1, 7)), *(f"5.3.{k}" for k in range(1, 7)),
                    *(f"5.4.{k}" for k in range(1, 5)), *(f"5.5.{k}" for k in range(1, 6)),
                    *(f"5.6.{k}" for k in range(1, 9)), *(f"5.7.{k}" for k in range(1, 6)),
                    *(f"5.8.{k}" for k in range(1, 9)), "6.1", "6.2", "6.3", "7.1", "7.2",
                    "7.3", "7.4", "8.1", "8.2", "8.3", "9")


def check_clauses(path: Path, commands: set[str], repo: Path = REPO_ROOT
                  ) -> tuple[list[Problem], list[Clause]]:
    """The problems of the clause map, and the applicable clauses satisfied by evidence outside
    this repository (listed by `qms check` and in release records; empty when unreadable)."""
    doc, clause_map, problems = YamlDocument.load_as(path, ClauseMap)
    if doc is None or clause_map is None:
        return problems, []
    listed = [c.clause for c in clause_map.clauses]
    problems += duplicates(doc, "clauses", listed, "clause")
    problems += [doc.problem(("clauses",), f"clause {c} is missing from the map")
                 for c in REQUIRED_CLAUSES if c not in listed]
    for i, clause in enumerate(clause_map.clauses):
        if clause.gap and clause.applicable:
            problems.append(doc.problem(("clauses", i, "gap"), f"clause {clause.clause} "
                                        f"({clause.title}) is not satisfied: {clause.gap}"))
        for k, ref in enumerate(clause.satisfied_by):
            if ref.command is not None and ref.command not in commands:
                problems.append(doc.problem(("clauses", i, "satisfied_by", k), f"clause "
                                            f"{clause.clause}: no command '{ref.command}'"))
            pattern = ref.record or ref.doc
            if pattern is None or pattern.startswith("var/"):  # var/: written by the test run
                continue
            problems += [doc.problem(("clauses", i, "satisfied_by", k), f"clause "
                                     f"{clause.clause}: {message}")
                         for message in _evidence_problems(repo, pattern, ref.holds)]
    outside = [c for c in clause_map.clauses if c.applicable and c.outside_repository]
    return problems, outside


def _evidence_problems(repo: Path, pattern: str, holds: list[str]) -> list[str]:
    """A clause's record or guide exists and every file it names holds the declared content."""
    files = sorted(Path(p) for p in glob.glob(str(repo / pattern), recursive=True)
                   if Path(p).is_file())
    if not files:
        return [f"{pattern} does not exist"]
    if not holds:
        return [f"{pattern}: no `holds` names the content that makes it evidence"]
    problems = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        name = path.relative_to(repo).as_posix()
        problems += [f"{name} does not hold {phrase!r}, the content it is cited for"
                     for phrase in holds if phrase not in text]
    return problems


@dataclass(frozen=True)
class CheckResult:
    problems: list[Problem]
    counts: dict[str, int]
    outside: list[Clause] = field(default_factory=list)  # clauses met outside the repository
    # Residual risks that bar a clinical claim (qms.risk.residual.release_blockers).
    blockers: list[str] = field(default_factory=list)


def run_checks(run: TestRun, *, commands: set[str], repo: Path = REPO_ROOT,
               closure: dict[str, Any] | None = None) -> CheckResult:
    """Every check; `closure` overrides the installed runtime closure (tests)."""
    from digital_contrast.qms.anomalies import accepted_tests, check_anomalies, load_anomalies
    from digital_contrast.qms.risk import check_risk_file, load_risk_file, risk_blockers
    from digital_contrast.qms.soup import check_soup, load_soup, runtime_closure
    from digital_contrast.qms.soup.platform import measure_platform

    qms_dir = repo / "qms"
    records, problems = load_records(qms_dir)
    problems += check_references(records)
    problems += check_binding(run, repo)
    problems += check_verification(records, run)
    problems += check_verification_records(records, repo)
    problems += check_items(records, repo, repo / "device" / "digital_contrast")
    design = read_detailed_design(records, repo)
    problems += check_design(design, records)
    problems += check_observed_imports(design, records, run.imports)
    problems += check_architecture(records, repo)
    problems += check_process_docs(repo)
    problems += check_device(qms_dir / "device.yaml", records)
    problems += check_placeholders(repo)
    found, outside = check_clauses(qms_dir / "clause_map.yaml", commands, repo)
    problems += found
    risk_file, found = load_risk_file(repo / "risk")
    problems += found
    anomalies, anomaly_doc, found = load_anomalies(qms_dir / "anomalies.yaml")
    problems += found
    if anomaly_doc is not None:
        problems += check_anomalies(anomalies, anomaly_doc, run,
                                    requirements=set(records.requirements),
                                    items=set(records.items),
                                    risks=set(risk_file.risks) if risk_file else set())
    problems += check_use_cases(repo, set(risk_file.risks) if risk_file else set())
    blockers: list[str] = []
    if risk_file is not None:
        # A control left open only by tests that document a known anomaly is not a gap: the
        # anomaly's evaluation (5.8.3) stands for it. Every other non-pass is still reported.
        accepted = frozenset(accepted_tests(anomalies, run))
        problems += check_risk_file(risk_file, records, run.outcomes, run.requirement_tests(),
                                    accepted=accepted)
        blockers = risk_blockers(risk_file, run.outcomes, run.requirement_tests(),
                                 accepted=accepted)
    soup, found = load_soup(qms_dir / "soup.yaml")
    problems += found
    if soup is not None:
        problems += check_soup(soup, closure if closure is not None else runtime_closure(),
                               set(records.items), reviews_dir=qms_dir / "soup" / "reviews",
                               platform=measure_platform(repo / "Makefile"))
    counts = {"user needs": len(records.needs), "requirements": len(records.requirements),
              "software items": len(records.items), "tests": len(run.cases),
              "tests linked": sum(bool(c.requirements) for c in run.cases.values()),
              "risks": len(risk_file.risks) if risk_file else 0,
              "risk controls": len(risk_file.controls) if risk_file else 0,
              "known anomalies": len(anomalies)}
    return CheckResult(sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message)),
                       counts, outside, blockers)


__all__ = ["CheckResult", "Problem", "display_path", "run_checks"]
