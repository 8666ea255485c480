"""The ISO 14971 risk management file as data: schema, gap checks and the risk management report.

`risk/policy.yaml` holds the severity and probability scales and the acceptability matrix,
`risk/risks/RISK-NNN.yaml` one risk each (hazard -> sequence of events -> hazardous situation
-> harm, initial and residual severity/probability, controls), `risk/controls.yaml` the risk
control measures (RC-NNN) with the requirements that implement them and the tests that verify
them. Levels are computed from the matrix, never read from a record. Every problem names its
file and line.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.documents import document_header, render, write_pdf
from digital_contrast.qms.requirements import Records, RequirementId, SoftwareRequirement, Text
from digital_contrast.qms.yaml_records import Problem, YamlDocument, display_path, duplicates

RISK_DIR = REPO_ROOT / "risk"
REPORT_NAME = "risk_management_report"
DOCUMENT_ID, TITLE = "DC-RMR", "Risk management report"
APPROVALS = ("Risk manager", "Quality", "Clinical")

SeverityId = Annotated[str, StringConstraints(pattern=r"^S\d$")]
ProbabilityId = Annotated[str, StringConstraints(pattern=r"^P\d$")]
RiskId = Annotated[str, StringConstraints(pattern=r"^RISK-\d{3}$")]
ControlId = Annotated[str, StringConstraints(pattern=r"^RC-\d{3}$")]
# A pytest node id or a prefix of one: a test file, a test, a parametrised case.
TestRef = Annotated[str, StringConstraints(pattern=r"^tests/[\w/.-]+\.py(::\S+)?$")]


class Level(StrEnum):
    ACCEPTABLE = "acceptable"
    ALARP = "alarp"  # reduced as far as possible; accepted only with a benefit-risk analysis
    UNACCEPTABLE = "unacceptable"


UNDEFINED = "undefined"  # a (severity, probability) pair the matrix does not define
LEVEL_LABELS = {Level.ACCEPTABLE: "acceptable", Level.ALARP: "ALARP",
                Level.UNACCEPTABLE: "unacceptable", UNDEFINED: "undefined"}


class ControlType(StrEnum):
    """The three options of ISO 14971 7.1, in their order of priority."""

    INHERENT = "inherent-safety-by-design"
    PROTECTIVE = "protective-measure"
    INFORMATION = "information-for-safety"


class Threat(StrEnum):
    """STRIDE categories, for the security risks of the threat model (IEC 81001-5-1)."""

    SPOOFING = "spoofing"
    TAMPERING = "tampering"
    REPUDIATION = "repudiation"
    DISCLOSURE = "information-disclosure"
    DENIAL = "denial-of-service"
    ELEVATION = "elevation-of-privilege"


class Verification(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_VERIFIED = "not verified"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeverityLevel(_Record):
    id: SeverityId
    name: Text
    definition: Text


class ProbabilityLevel(_Record):
    id: ProbabilityId
    name: Text
    frequency: Text
    definition: Text


class Policy(_Record):
    id: Annotated[str, StringConstraints(pattern=r"^DC-[A-Z]+$")]
    title: Text
    basis: list[Text] = Field(min_length=1)
    scope: Text
    software_safety_class: Literal["A", "B", "C"]
    safety_class_rationale: Text
    probability_basis: Text
    severity: list[SeverityLevel] = Field(min_length=1)
    probability: list[ProbabilityLevel] = Field(min_length=1)
    acceptability: dict[SeverityId, dict[ProbabilityId, Level]]
    residual_risk_policy: Text
    benefit_risk_policy: Text
    overall_residual_risk_policy: Text

    def level(self, severity: str, probability: str) -> str:
        return self.acceptability.get(severity, {}).get(probability, UNDEFINED)


class Estimate(_Record):
    severity: SeverityId
    probability: ProbabilityId


class Risk(_Record):
    id: RiskId
    title: Text
    hazard: Text
    causes: list[Text] = Field(min_length=1)
    sequence_of_events: list[Text] = Field(min_length=1)
    hazardous_situation: Text
    harm: Text
    threats: list[Threat] = Field(default_factory=list)
    initial: Estimate
    # Empty or absent is a gap the check reports at its line, not a schema error.
    controls: list[ControlId] = Field(default_factory=list)
    residual: Estimate
    benefit_risk: Text | None = None
    notes: Text | None = None
    # Bound by the loader: a level only exists with respect to a policy's matrix.
    _policy: Policy | None = PrivateAttr(default=None)

    def _level(self, estimate: Estimate) -> str:
        if self._policy is None:
            raise RuntimeError(f"{self.id} is not bound to a risk policy; use load_risk_file")
        return self._policy.level(estimate.severity, estimate.probability)

    @property
    def initial_level(self) -> str:
        return self._level(self.initial)

    @property
    def residual_level(self) -> str:
        return self._level(self.residual)


class Control(_Record):
    id: ControlId
    title: Text
    type: ControlType
    description: Text
    implemented_by: list[RequirementId] = Field(default_factory=list)
    verified_by: list[TestRef] = Field(default_factory=list)


@dataclass(frozen=True)
class RiskFile:
    """The validated records, with their documents so that checks can name lines."""

    policy: Policy
    risks: dict[str, Risk]
    controls: dict[str, Control]
    policy_doc: YamlDocument
    risk_docs: dict[str, YamlDocument]
    controls_doc: YamlDocument | None
    control_rows: dict[str, int] = field(default_factory=dict)  # id -> index in `controls:`

    def level(self, severity: str, probability: str) -> str:
        return self.policy.level(severity, probability)

    def risk_problem(self, risk_id: str, loc: tuple[str | int, ...], message: str) -> Problem:
        return self.risk_docs[risk_id].problem(loc, message)

    def control_problem(self, control_id: str, loc: tuple[str | int, ...],
                        message: str) -> Problem:
        assert self.controls_doc is not None  # a control exists only if its file loaded
        return self.controls_doc.problem(("controls", self.control_rows[control_id], *loc),
                                         message)


def load_risk_file(risk_dir: Path = RISK_DIR) -> tuple[RiskFile | None, list[Problem]]:
    """The risk file, or None when the policy cannot be read; every schema problem listed."""
    problems: list[Problem] = []
    policy_doc, found = YamlDocument.load(risk_dir / "policy.yaml")
    problems += found
    policy = None
    if policy_doc is not None:
        policy, found = policy_doc.validate((), policy_doc.data, Policy)
        problems += found

    controls: dict[str, Control] = {}
    rows: dict[str, int] = {}
    controls_doc, found = YamlDocument.load(risk_dir / "controls.yaml")
    problems += found
    if controls_doc is not None:
        raw = controls_doc.data.get("controls") if isinstance(controls_doc.data, dict) else None
        # One id per row (a placeholder where there is none) so that indexes name lines.
        ids = [row["id"] if isinstance(row, dict) and isinstance(row.get("id"), str)
               else f"#{n}" for n, row in enumerate(raw if isinstance(raw, list) else [])]
        problems += duplicates(controls_doc, "controls", ids, "control")
        for index, rid in enumerate(ids):
            rows.setdefault(rid, index)
        records, found = controls_doc.validate_list("controls", Control)
        problems += found
        for control in records:
            controls.setdefault(control.id, control)

    risks: dict[str, Risk] = {}
    risk_docs: dict[str, YamlDocument] = {}
    paths = sorted((risk_dir / "risks").glob("*.yaml")) if (risk_dir / "risks").is_dir() else []
    if not paths:
        problems.append(Problem(display_path(risk_dir / "risks"), None,
                                "no risk records (risks/RISK-NNN.yaml)"))
    for path in paths:
        doc, found = YamlDocument.load(path)
        problems += found
        if doc is None:
            continue
        risk, found = doc.validate((), doc.data, Risk)
        problems += found
        if risk is None:
            continue
        if path.stem != risk.id:
            problems.append(doc.problem(("id",), f"{risk.id} is in {path.name}; a risk's file "
                                        f"is named after its id ({risk.id}.yaml)"))
        if risk.id in risks:
            problems.append(doc.problem(("id",), f"duplicate risk id {risk.id} (also in "
                                        f"{risk_docs[risk.id].name})"))
            continue
        risks[risk.id] = risk
        risk_docs[risk.id] = doc

    if policy is None or policy_doc is None:
        return None, problems
    for risk in risks.values():
        risk._policy = policy  # private attributes stay settable on a frozen model
    return RiskFile(policy, risks, controls, policy_doc, risk_docs, controls_doc, rows), problems


# --- Verification from a test run --------------------------------------------------------------

def matching_tests(ref: str, test_outcomes: dict[str, str]) -> list[str]:
    """Node ids that `ref` names: itself, or the tests of a file, class or parametrised test."""
    return sorted(node for node in test_outcomes
                  if node == ref or node.startswith((ref + "::", ref + "[")))


@dataclass(frozen=True)
class ControlEvidence:
    """The tests that verify one control, grouped by where they come from."""

    by_requirement: dict[str, dict[str, str]]  # requirement -> node id -> outcome
    explicit: dict[str, dict[str, str]]  # verified_by entry -> node id -> outcome
    # Skipped/xfailed tests that document an open known anomaly (qms/anomalies.yaml): their
    # not passing is evaluated there (IEC 62304 5.8.3), so it does not leave a control open.
    accepted: frozenset[str] = frozenset()

    @property
    def tests(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for group in (*self.by_requirement.values(), *self.explicit.values()):
            merged.update(group)
        return merged

    @property
    def status(self) -> Verification:
        outcomes = list(self.tests.values())
        if "failed" in outcomes:
            return Verification.FAILED
        # Every implementing requirement and every named entry must have a test, all passed.
        covered = all(self.by_requirement.values()) and all(self.explicit.values())
        if covered and outcomes and all(o == "passed" or n in self.accepted
                                        for n, o in self.tests.items()):
            return Verification.PASSED
        return Verification.NOT_VERIFIED


def control_evidence(control: Control, test_outcomes: dict[str, str],
                     requirement_tests: dict[str, list[str]],
                     accepted: frozenset[str] = frozenset()) -> ControlEvidence:
    return ControlEvidence(
        {rid: {node: test_outcomes.get(node, "not run")
               for node in requirement_tests.get(rid, [])} for rid in control.implemented_by},
        {ref: {node: test_outcomes[node] for node in matching_tests(ref, test_outcomes)}
         for ref in control.verified_by}, accepted)


# --- Gap checks --------------------------------------------------------------------------------

def _not_passed(tests: dict[str, str], accepted: frozenset[str] = frozenset()) -> str:
    bad = [f"{node} ({outcome})" for node, outcome in sorted(tests.items())
           if outcome != "passed" and node not in accepted]
    return ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")


def _check_policy(rf: RiskFile) -> list[Problem]:
    policy, doc = rf.policy, rf.policy_doc
    problems: list[Problem] = []
    for key, scale in (("severity", policy.severity), ("probability", policy.probability)):
        problems += duplicates(doc, key, [level.id for level in scale], f"{key} level")
    severities = [s.id for s in policy.severity]
    probabilities = [p.id for p in policy.probability]
    for sid, row in policy.acceptability.items():
        if sid not in severities:
            problems.append(doc.problem(("acceptability", sid),
                                        f"matrix row {sid} is not on the severity scale"))
        problems += [doc.problem(("acceptability", sid, pid),
                                 f"matrix column {pid} is not on the probability scale")
                     for pid in row if pid not in probabilities]
    # Scales are listed from least to worst: a worse severity or a higher probability never
    # makes a risk more acceptable.
    rank = {Level.ACCEPTABLE: 0, Level.ALARP: 1, Level.UNACCEPTABLE: 2}
    for i, sid in enumerate(severities):
        for j, pid in enumerate(probabilities):
            level = policy.level(sid, pid)
            if level == UNDEFINED:
                problems.append(doc.problem(("acceptability", sid),
                                            f"the matrix does not define ({sid}, {pid})"))
                continue
            lesser = ([(severities[i - 1], pid)] if i else []) + \
                ([(sid, probabilities[j - 1])] if j else [])
            for sid2, pid2 in lesser:
                other = policy.level(sid2, pid2)
                if other != UNDEFINED and rank[Level(other)] > rank[Level(level)]:
                    problems.append(doc.problem(
                        ("acceptability", sid, pid),
                        f"({sid}, {pid}) is {level} but the lesser ({sid2}, {pid2}) is {other}"))
    return problems


def _check_risk(rf: RiskFile, risk: Risk) -> list[Problem]:
    problems: list[Problem] = []
    severities = {s.id: n for n, s in enumerate(rf.policy.severity)}
    probabilities = {p.id: n for n, p in enumerate(rf.policy.probability)}
    for stage in ("initial", "residual"):
        estimate: Estimate = getattr(risk, stage)
        if estimate.severity not in severities:
            problems.append(rf.risk_problem(risk.id, (stage, "severity"),
                                            f"severity {estimate.severity} is not on the "
                                            f"policy's scale ({', '.join(severities)})"))
        if estimate.probability not in probabilities:
            problems.append(rf.risk_problem(risk.id, (stage, "probability"),
                                            f"probability {estimate.probability} is not on the "
                                            f"policy's scale ({', '.join(probabilities)})"))
    if not risk.controls:
        where = ("controls",) if "controls" in (rf.risk_docs[risk.id].data or {}) else ("id",)
        problems.append(rf.risk_problem(risk.id, where, f"{risk.id} has no risk control"))
    problems += [rf.risk_problem(risk.id, ("controls", n),
                                 f"{cid} is not defined in risk/controls.yaml")
                 for n, cid in enumerate(risk.controls) if cid not in rf.controls]
    problems += duplicates(rf.risk_docs[risk.id], "controls", list(risk.controls), "control")

    initial, residual = risk.initial, risk.residual
    for key, scale in (("severity", severities), ("probability", probabilities)):
        before, after = getattr(initial, key), getattr(residual, key)
        if before in scale and after in scale and scale[after] > scale[before]:
            problems.append(rf.risk_problem(risk.id, ("residual", key),
                                            f"residual {key} {after} is worse than the "
                                            f"initial {before}"))
    level = risk.residual_level
    if level == Level.UNACCEPTABLE:
        problems.append(rf.risk_problem(risk.id, ("residual",),
                                        f"residual risk {residual.severity}/"
                                        f"{residual.probability} is unacceptable"))
    elif level == Level.ALARP and not risk.benefit_risk:
        problems.append(rf.risk_problem(risk.id, ("residual",),
                                        f"residual risk {residual.severity}/"
                                        f"{residual.probability} is ALARP: a benefit_risk "
                                        "analysis is required"))
    return problems


def _check_control(rf: RiskFile, control: Control, used: set[str],
                   requirements: dict[str, SoftwareRequirement],
                   test_outcomes: dict[str, str], requirement_tests: dict[str, list[str]],
                   accepted: frozenset[str]) -> list[Problem]:
    cid = control.id
    problems: list[Problem] = []
    if cid not in used:
        problems.append(rf.control_problem(cid, ("id",), f"{cid} controls no risk"))
    if not control.implemented_by:
        problems.append(rf.control_problem(cid, ("id",),
                                           f"{cid} is implemented by no requirement"))
    for n, rid in enumerate(control.implemented_by):
        if rid not in requirements:
            problems.append(rf.control_problem(cid, ("implemented_by", n),
                                               f"{cid}: unknown requirement {rid}"))
        elif not requirements[rid].risk_control:
            problems.append(rf.control_problem(cid, ("implemented_by", n),
                                               f"{rid} implements {cid} but is not marked "
                                               "risk_control: true"))
    evidence = control_evidence(control, test_outcomes, requirement_tests, accepted)
    if not evidence.tests:
        where = ("verified_by",) if control.verified_by else ("id",)
        problems.append(rf.control_problem(cid, where, f"{cid} has no verifying test: no test "
                                           "in the run verifies its requirements and it names "
                                           "none"))
        return problems
    for n, rid in enumerate(control.implemented_by):
        tests = evidence.by_requirement[rid]
        if rid in requirements and not tests:
            problems.append(rf.control_problem(cid, ("implemented_by", n),
                                               f"{cid}: no test in the run verifies {rid}"))
        elif _not_passed(tests, accepted):
            problems.append(rf.control_problem(cid, ("implemented_by", n),
                                               f"{cid} not verified: tests of {rid} did not "
                                               f"all pass: {_not_passed(tests, accepted)}"))
    for n, ref in enumerate(control.verified_by):
        tests = evidence.explicit[ref]
        if not tests:
            problems.append(rf.control_problem(cid, ("verified_by", n),
                                               f"{cid}: {ref} matches no test in the run"))
        elif _not_passed(tests, accepted):
            problems.append(rf.control_problem(cid, ("verified_by", n),
                                               f"{cid} not verified: "
                                               f"{_not_passed(tests, accepted)}"))
    return problems


def check_risk_file(risk_file: RiskFile, records: Records, test_outcomes: dict[str, str],
                    requirement_tests: dict[str, list[str]], *,
                    accepted: frozenset[str] = frozenset()) -> list[Problem]:
    """Every gap in the risk file against the requirement records and the latest test run.

    `test_outcomes` maps pytest node ids to passed / failed / skipped / not run and
    `requirement_tests` requirement ids to the node ids that verify them (see
    `qms.test_results.TestRun`).
    Requirements flagged `risk_control: true` must implement a control.
    `accepted`: node ids of skipped tests that document an open known anomaly; a control whose
    only non-passing tests are these is verified (every other outcome is still reported).
    """
    rf = risk_file
    problems = _check_policy(rf)
    for risk in rf.risks.values():
        problems += _check_risk(rf, risk)
    used = {cid for risk in rf.risks.values() for cid in risk.controls}
    for control in rf.controls.values():
        problems += _check_control(rf, control, used, records.requirements, test_outcomes,
                                   requirement_tests, accepted)
    implemented = {rid for c in rf.controls.values() for rid in c.implemented_by}
    problems += [records.requirement_problem(rid, ("id",), f"{rid} is a risk control "
                                             "(risk_control: true) but implements no control "
                                             "in risk/controls.yaml")
                 for rid, requirement in records.requirements.items()
                 if requirement.risk_control and rid not in implemented]
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))


# --- The risk management report ----------------------------------------------------------------

def _estimate(rf: RiskFile, estimate: Estimate) -> dict[str, str]:
    level = rf.level(estimate.severity, estimate.probability)
    return {"severity": estimate.severity, "probability": estimate.probability,
            "level": level, "label": LEVEL_LABELS.get(level, level)}


def overall_statement(rf: RiskFile, statuses: dict[str, Verification],
                      via_anomalies: tuple[str, ...] = ()) -> dict[str, Any]:
    """The overall residual risk conclusion (ISO 14971 clause 8), computed from the records;
    `via_anomalies`: controls verified with a test excused by a documented known anomaly."""
    open_items: list[str] = []
    for risk in rf.risks.values():
        level, r = risk.residual_level, risk.residual
        if level == Level.UNACCEPTABLE:
            open_items.append(f"{risk.id} ({risk.title}): residual risk {r.severity}/"
                              f"{r.probability} is unacceptable")
        elif level == Level.ALARP and not risk.benefit_risk:
            open_items.append(f"{risk.id} ({risk.title}): residual risk is ALARP without a "
                              "benefit-risk analysis")
        elif level == UNDEFINED:
            open_items.append(f"{risk.id} ({risk.title}): residual risk is not on the matrix")
        if not risk.controls:
            open_items.append(f"{risk.id} ({risk.title}): no risk control")
        missing = [cid for cid in risk.controls if cid not in rf.controls]
        if missing:
            open_items.append(f"{risk.id}: controls not defined: {', '.join(missing)}")
    for cid, status in statuses.items():
        if status != Verification.PASSED:
            open_items.append(f"{cid} ({rf.controls[cid].title}): {status.value}")
    justified = [r.id for r in rf.risks.values() if r.residual_level == Level.ALARP
                 and r.benefit_risk]
    if open_items:
        text = ("The overall residual risk is NOT acceptable in this state: the following "
                f"{len(open_items)} item(s) must be resolved before release.")
    else:
        text = (f"All {len(rf.risks)} residual risks are acceptable"
                + (f" or, at ALARP, justified by a benefit-risk analysis ({', '.join(justified)})"
                   if justified else "")
                + f", and all {len(rf.controls)} risk controls are verified by passing tests"
                + (f" ({', '.join(via_anomalies)} with a test that documents a known residual "
                   "anomaly, evaluated in qms/anomalies.yaml)" if via_anomalies else "")
                + ". "
                "The overall residual risk is acceptable (ISO 14971:2019 clause 8), subject to "
                "the conclusions of the benefit-risk analyses and disclosure of the residual "
                "risks in the instructions for use.")
    return {"acceptable": not open_items, "statement": text, "open_items": open_items,
            "justified": justified}


def render_risk_report(risk_file: RiskFile, test_outcomes: dict[str, str],
                       requirement_tests: dict[str, list[str]], *,
                       date: dt.date | None = None,
                       accepted: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The data of the risk management report (document, policy, risks, controls, verdict)."""
    rf = risk_file
    evidence = {cid: control_evidence(c, test_outcomes, requirement_tests, accepted)
                for cid, c in sorted(rf.controls.items())}
    statuses = {cid: e.status for cid, e in evidence.items()}
    used_by: dict[str, list[str]] = defaultdict(list)
    for risk in rf.risks.values():
        for cid in risk.controls:
            used_by[cid].append(risk.id)
    risks = [{"id": r.id, "title": r.title, "hazard": r.hazard, "causes": r.causes,
              "sequence_of_events": r.sequence_of_events,
              "hazardous_situation": r.hazardous_situation, "harm": r.harm,
              "threats": [t.value for t in r.threats], "controls": r.controls,
              "initial": _estimate(rf, r.initial), "residual": _estimate(rf, r.residual),
              "benefit_risk": r.benefit_risk, "notes": r.notes}
             for _, r in sorted(rf.risks.items())]
    controls = []
    for cid, e in evidence.items():
        c, tests = rf.controls[cid], e.tests
        controls.append({"id": cid, "title": c.title, "type": c.type.value,
                         "description": c.description, "requirements": c.implemented_by,
                         "verified_by": c.verified_by, "risks": used_by.get(cid, []),
                         "tests": len(tests),
                         "passed": sum(o == "passed" for o in tests.values()),
                         "status": e.status.value})
    policy = rf.policy
    severities = [s.id for s in policy.severity]
    matrix = [{"severity": s, "cells": [{"probability": p.id, "level": policy.level(s, p.id),
                                         "label": LEVEL_LABELS.get(policy.level(s, p.id), "?")}
                                        for p in policy.probability]}
              for s in reversed(severities)]
    count = defaultdict(int)
    for r in risks:
        count[("initial", r["initial"]["level"])] += 1
        count[("residual", r["residual"]["level"])] += 1
    return {
        "document": {**document_header(DOCUMENT_ID, TITLE, approvals=APPROVALS,
                                       source=f"risk/ (policy {policy.id}), latest test run",
                                       date=date or dt.date.today()),
                     "policy": policy.id},  # the Markdown title block names the policy
        "policy": {"id": policy.id, "title": policy.title, "basis": policy.basis,
                   "scope": policy.scope, "safety_class": policy.software_safety_class,
                   "safety_class_rationale": policy.safety_class_rationale,
                   "probability_basis": policy.probability_basis,
                   "severity": [s.model_dump() for s in policy.severity],
                   "probability": [p.model_dump() for p in policy.probability],
                   "matrix": matrix, "residual": policy.residual_risk_policy,
                   "benefit_risk": policy.benefit_risk_policy,
                   "overall": policy.overall_residual_risk_policy},
        "risks": risks,
        "threats": [r for r in risks if r["threats"]],
        "controls": controls,
        "benefit_risk": [r for r in risks if r["benefit_risk"]],
        "summary": {
            "risks": len(risks), "controls": len(controls),
            "levels": [{"level": LEVEL_LABELS[lv], "initial": count[("initial", lv)],
                        "residual": count[("residual", lv)]} for lv in Level],
            "verified": sum(s == Verification.PASSED for s in statuses.values()),
            "failed": sum(s == Verification.FAILED for s in statuses.values()),
            "not_verified": sum(s == Verification.NOT_VERIFIED for s in statuses.values()),
            "tests": len(test_outcomes)},
        "overall": overall_statement(rf, statuses, tuple(
            cid for cid, e in evidence.items()
            if any(n in accepted and o != "passed" for n, o in e.tests.items()))),
    }


def write_risk_report(out_dir: Path, risk_file: RiskFile, test_outcomes: dict[str, str],
                      requirement_tests: dict[str, list[str]], *,
                      date: dt.date | None = None,
                      accepted: frozenset[str] = frozenset()) -> list[Path]:
    """`risk_management_report.md`, `.html` (self-contained) and its `.pdf` under `out_dir`."""
    data = render_risk_report(risk_file, test_outcomes, requirement_tests, date=date,
                              accepted=accepted)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, html = (render(f"{REPORT_NAME}.{suffix}.j2", data, out_dir / f"{REPORT_NAME}.{suffix}",
                       compact=True) for suffix in ("md", "html"))
    return [md, html, write_pdf(html)]
