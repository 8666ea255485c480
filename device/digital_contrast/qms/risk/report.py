"""The risk management report (DC-RMR): risk table with claimed and computed residual
probabilities, controls with their verification and the evidence bounding their failure, and
the overall residual risk conclusion, as Markdown, HTML and PDF."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

from digital_contrast.qms.documents import document_header, render, write_pdf
from digital_contrast.qms.risk.evidence import ControlVerification, control_evidence
from digital_contrast.qms.risk.load import RiskFile
from digital_contrast.qms.risk.residual import Residual, compute_bounds, overall_residual_risk
from digital_contrast.qms.risk.schema import LEVEL_LABELS, Estimate, Level

REPORT_NAME = "risk_management_report"
DOCUMENT_ID, TITLE = "DC-RMR", "Risk management report"
APPROVALS = ("Risk manager", "Quality", "Clinical")


def _estimate(rf: RiskFile, estimate: Estimate) -> dict[str, str]:
    level = rf.level(estimate.severity, estimate.probability)
    return {"severity": estimate.severity, "probability": estimate.probability,
            "level": level, "label": LEVEL_LABELS.get(level, level)}


def _computed(res: Residual) -> dict[str, Any]:
    return {"probability": f"{res.probability:.2g}", "band": res.computed,
            "claim": res.claim, "effective": res.effective, "level": res.level,
            "label": LEVEL_LABELS.get(res.level, res.level), "edge": f"{res.edge:g}",
            "factor": f"{res.factor:.3g}", "method": res.method,
            "claim_below_evidence": res.claim_below_evidence}


def render_risk_report(risk_file: RiskFile, test_outcomes: dict[str, str],
                       requirement_tests: dict[str, list[str]], *,
                       date: dt.date | None = None,
                       accepted: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The data of the risk management report (document, policy, risks, controls, verdict)."""
    rf = risk_file
    evidence = {cid: control_evidence(c, test_outcomes, requirement_tests, accepted)
                for cid, c in sorted(rf.controls.items())}
    bounds = compute_bounds(rf, test_outcomes, requirement_tests, accepted)
    overall = overall_residual_risk(rf, test_outcomes, requirement_tests, accepted=accepted,
                                    bounds=bounds)
    residuals: dict[str, Residual] = overall.pop("residuals")
    statuses = {cid: e.status for cid, e in evidence.items()}
    used_by: dict[str, list[str]] = defaultdict(list)
    for risk in rf.risks.values():
        for cid in risk.controls:
            used_by[cid].append(risk.id)
    risks = [{"id": r.id, "title": r.title, "hazard": r.hazard, "causes": r.causes,
              "sequence_of_events": r.sequence_of_events,
              "hazardous_situation": r.hazardous_situation, "harm": r.harm,
              "threats": [t.value for t in r.threats], "controls": r.controls,
              "initial": _estimate(rf, r.initial),
              # The residual shown is the worse of the claim and the computed band.
              "residual": {"severity": r.residual.severity,
                           "probability": residuals[r.id].effective,
                           "level": residuals[r.id].level,
                           "label": LEVEL_LABELS.get(residuals[r.id].level,
                                                     residuals[r.id].level)},
              "computed": _computed(residuals[r.id]),
              "independence": r.independence.model_dump() if r.independence else None,
              "bounds": [bounds[cid].describe() for cid in r.controls if cid in bounds],
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
                         "status": e.status.value, "bound": f"{bounds[cid].bound:.3g}",
                         "evidence": [c.describe() for c in bounds[cid].counts]
                         or [f"no credit: {c.no_credit}"]})
    policy = rf.policy
    severities = [s.id for s in policy.severity]
    matrix = [{"severity": s, "cells": [{"probability": p.id, "level": policy.level(s, p.id),
                                         "label": LEVEL_LABELS.get(policy.level(s, p.id), "?")}
                                        for p in policy.probability]}
              for s in reversed(severities)]
    count = defaultdict(int)
    for r in risks:
        count[("initial", r["initial"]["level"])] += 1
        count[("residual", r["computed"]["level"])] += 1
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
                   "evidence": policy.evidence_policy,
                   "benefit_risk": policy.benefit_risk_policy,
                   "overall": policy.overall_residual_risk_policy},
        "risks": risks,
        "threats": [r for r in risks if r["threats"]],
        "controls": controls,
        "benefit_risk": [r for r in risks if r["benefit_risk"]],
        "p1_claims": [r for r in risks if r["residual"]["probability"] == policy.probability[0].id],
        "summary": {
            "risks": len(risks), "controls": len(controls),
            "levels": [{"level": LEVEL_LABELS[lv], "initial": count[("initial", lv)],
                        "residual": count[("residual", lv)]} for lv in Level],
            "verified": sum(s == ControlVerification.PASSED for s in statuses.values()),
            "failed": sum(s == ControlVerification.FAILED for s in statuses.values()),
            "not_verified": sum(s == ControlVerification.NOT_VERIFIED for s in statuses.values()),
            "tests": len(test_outcomes)},
        "overall": overall,
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
