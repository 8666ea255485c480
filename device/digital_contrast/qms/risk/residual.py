"""A risk's residual probability computed from its controls' evidence, the claim in its record
checked against it, and the overall residual risk conclusion (ISO 14971 7.3, 8)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digital_contrast.qms.risk.bounds import (
    ControlBound,
    EvidenceError,
    control_bound,
    read_signed_validation,
)
from digital_contrast.qms.risk.evidence import ControlVerification, control_evidence
from digital_contrast.qms.risk.load import RiskFile
from digital_contrast.qms.risk.schema import LEVEL_LABELS, UNDEFINED, Level, Risk

MODEL_RECORDS = "validation/reports/models/*/*/validation_record.json"


@dataclass(frozen=True)
class Residual:
    """initial band's upper edge x control factor = probability, in band `computed`; the
    level uses the worse of the computed band and the record's claim."""

    risk: str
    edge: float
    factor: float
    method: str
    probability: float
    computed: str  # probability band id
    claim: str
    effective: str  # the worse of computed and claim
    level: str  # from the matrix, at the residual severity and the effective band

    @property
    def claim_below_evidence(self) -> bool:
        return self.effective != self.claim

    def describe(self) -> str:
        return (f"{self.probability:.2g} = {self.edge:g} (upper edge of the initial band) x "
                f"{self.factor:.3g} ({self.method})")


def compute_bounds(rf: RiskFile, test_outcomes: dict[str, str],
                   requirement_tests: dict[str, list[str]],
                   accepted: frozenset[str] = frozenset()) -> dict[str, ControlBound]:
    return {cid: control_bound(c, test_outcomes, requirement_tests, rf.root, accepted)
            for cid, c in sorted(rf.controls.items())}


def compute_residual(rf: RiskFile, risk: Risk, bounds: dict[str, ControlBound]) -> Residual:
    """Without an independence argument, all controls fail together with a probability no
    higher than the best single control's bound (Frechet), whatever their dependence; with
    one, the product over the argued controls, when it is lower."""
    policy = rf.policy
    edge = policy.upper_edge(risk.initial.probability) or 1.0
    known = {cid: bounds[cid].bound for cid in risk.controls if cid in bounds}
    best_id = min(known, key=lambda c: known[c]) if known else None
    factor = known[best_id] if best_id else 1.0
    method = (f"best single control {best_id}" if factor < 1.0
              else "no control with evidence: no credit")
    argued = risk.independence.controls if risk.independence else []
    if argued and all(cid in known for cid in argued):
        product = math.prod(known[cid] for cid in argued)
        if product < factor:
            factor, method = product, f"product over the independent {', '.join(argued)}"
    probability = edge * factor
    computed = policy.band(probability)
    ranks = {p.id: n for n, p in enumerate(policy.probability)}
    claim = risk.residual.probability
    effective = claim if ranks.get(claim, -1) >= ranks.get(computed, len(ranks)) else computed
    return Residual(risk.id, edge, factor, method, probability, computed, claim, effective,
                    policy.level(risk.residual.severity, effective))


@dataclass(frozen=True)
class ModelEvidence:
    """What the signed validation records of the candidate models show."""

    models: tuple[str, ...]
    passed: tuple[str, ...]
    clinical: tuple[str, ...]  # passed, on evidence that is not phantom-only
    statements: tuple[str, ...]

    @property
    def benefit_demonstrated(self) -> bool:
        return bool(self.clinical)

    def describe(self) -> str:
        if not self.models:
            return ("No signed validation record of any model: no clinical benefit is "
                    "demonstrated.")
        evidence = "; ".join(sorted(set(self.statements)))
        if not self.passed:
            return (f"No model has passed its validation protocol ({len(self.models)} signed "
                    f"records: {', '.join(self.models)}, all failed). The evidence is "
                    f"'{evidence}': phantom-only evidence supports no clinical benefit claim, "
                    "so no benefit-risk analysis can yet justify a residual risk.")
        if not self.clinical:
            return (f"{', '.join(self.passed)} passed its protocol on phantom-only evidence "
                    f"('{evidence}'), which supports no clinical benefit claim.")
        return f"Clinical evidence of benefit: {', '.join(self.clinical)} passed its protocol."


def model_evidence(root: Path) -> ModelEvidence:
    models, passed, clinical, statements = [], [], [], []
    for path in sorted(root.glob(MODEL_RECORDS)):
        try:
            record = read_signed_validation(path, root)
        except EvidenceError:
            # An unreadable, unsigned or untrusted record is evidence of nothing; qms check
            # reports those a control names, and the model gate refuses them at load.
            models.append(f"{path.parent.name} (not accepted as evidence)")
            continue
        models.append(record.model)
        statements.append(record.evidence)
        if record.passed:
            passed.append(record.model)
            if "phantom" not in record.evidence.lower():
                clinical.append(record.model)
    return ModelEvidence(tuple(models), tuple(passed), tuple(clinical), tuple(statements))


def release_blockers(rf: RiskFile, residuals: dict[str, Residual],
                     models: ModelEvidence) -> list[str]:
    """Residual risks that bar a clinical claim: computed unacceptable, ALARP without a
    benefit-risk analysis, or ALARP whose benefit no clinical evidence demonstrates."""
    blockers = []
    for rid, res in sorted(residuals.items()):
        risk = rf.risks[rid]
        where = (f"{rid} ({risk.title}): residual {risk.residual.severity}/{res.effective}")
        if res.level == Level.UNACCEPTABLE:
            blockers.append(f"{where} is unacceptable ({res.describe()})")
        elif res.level == Level.ALARP and not risk.benefit_risk:
            blockers.append(f"{where} is ALARP without a benefit-risk analysis")
        elif res.level == Level.ALARP and not models.benefit_demonstrated:
            blockers.append(f"{where} is ALARP and its benefit-risk analysis rests on a "
                            "clinical benefit no validated model demonstrates")
        elif res.level == UNDEFINED:
            blockers.append(f"{where} is not on the matrix")
    return blockers


def overall_residual_risk(rf: RiskFile, test_outcomes: dict[str, str],
                          requirement_tests: dict[str, list[str]], *,
                          accepted: frozenset[str] = frozenset(),
                          bounds: dict[str, ControlBound] | None = None) -> dict[str, Any]:
    """The overall residual risk conclusion (ISO 14971 clause 8) computed from the records:
    `acceptable`, `conclusion` ("acceptable" / "not acceptable"), `statement`, `open_items`
    (everything that prevents it), `blockers` (the residual risks among them), `benefit` (what
    the validation records demonstrate), `residuals` and `levels` per risk."""
    bounds = bounds or compute_bounds(rf, test_outcomes, requirement_tests, accepted)
    residuals = {rid: compute_residual(rf, r, bounds) for rid, r in rf.risks.items()}
    models = model_evidence(rf.root)
    blockers = release_blockers(rf, residuals, models)
    open_items = list(blockers)
    for risk in rf.risks.values():
        if not risk.controls:
            open_items.append(f"{risk.id} ({risk.title}): no risk control")
        missing = [cid for cid in risk.controls if cid not in rf.controls]
        if missing:
            open_items.append(f"{risk.id}: controls not defined: {', '.join(missing)}")
    evidence = {cid: control_evidence(c, test_outcomes, requirement_tests, accepted)
                for cid, c in sorted(rf.controls.items())}
    for cid, e in evidence.items():
        if e.status != ControlVerification.PASSED:
            open_items.append(f"{cid} ({rf.controls[cid].title}): {e.status.value}")
    via_anomalies = [cid for cid, e in evidence.items()
                     if any(n in accepted and o != "passed" for n, o in e.tests.items())]
    justified = [rid for rid, res in sorted(residuals.items())
                 if res.level == Level.ALARP and rf.risks[rid].benefit_risk
                 and models.benefit_demonstrated]
    if open_items:
        unacceptable = [rid for rid, res in sorted(residuals.items())
                        if res.level == Level.UNACCEPTABLE]
        text = ("The overall residual risk is NOT acceptable"
                + (f": {', '.join(unacceptable)} computed unacceptable from the evidence"
                   if unacceptable else "")
                + f". {models.describe()} The following {len(open_items)} item(s) must be "
                "resolved before any clinical claim; a build for research use states this "
                "conclusion in its release record.")
    else:
        text = (f"All {len(rf.risks)} residual risks are acceptable"
                + (f" or, at ALARP, justified by a benefit-risk analysis ({', '.join(justified)})"
                   if justified else "")
                + f", and all {len(rf.controls)} risk controls are verified by passing tests"
                + (f" ({', '.join(via_anomalies)} with a test that documents a known residual "
                   "anomaly, evaluated in qms/anomalies.yaml)" if via_anomalies else "")
                + f". {models.describe()} "
                "The overall residual risk is acceptable (ISO 14971:2019 clause 8), subject to "
                "the conclusions of the benefit-risk analyses and disclosure of the residual "
                "risks in the instructions for use.")
    return {"acceptable": not open_items,
            "conclusion": "acceptable" if not open_items else "not acceptable",
            "statement": text, "open_items": open_items, "blockers": blockers,
            "justified": justified,
            "benefit": models.describe(), "residuals": residuals,
            "levels": {rid: LEVEL_LABELS.get(r.level, r.level) for rid, r in residuals.items()}}
