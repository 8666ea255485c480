"""The risk management report (DC-RMR): risk table, controls and their verification, and the
overall residual risk conclusion, as Markdown, HTML and PDF."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

from digital_contrast.qms.documents import document_header, render, write_pdf
from digital_contrast.qms.risk.evidence import ControlVerification, control_evidence
from digital_contrast.qms.risk.load import RiskFile
from digital_contrast.qms.risk.schema import LEVEL_LABELS, UNDEFINED, Estimate, Level

REPORT_NAME = "risk_management_report"
DOCUMENT_ID, TITLE = "DC-RMR", "Risk management report"
APPROVALS = ("Risk manager", "Quality", "Clinical")


def _estimate(rf: RiskFile, estimate: Estimate) -> dict[str, str]:
    level = rf.level(estimate.severity, estimate.probability)
    return {"severity": estimate.severity, "probability": estimate.probability,
            "level": level, "label": LEVEL_LABELS.get(level, level)}


def overall_statement(rf: RiskFile, statuses: dict[str, ControlVerification],
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
        if status != ControlVerification.PASSED:
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
                                       records=("risk",),
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
            "verified": sum(s == ControlVerification.PASSED for s in statuses.values()),
            "failed": sum(s == ControlVerification.FAILED for s in statuses.values()),
            "not_verified": sum(s == ControlVerification.NOT_VERIFIED for s in statuses.values()),
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
