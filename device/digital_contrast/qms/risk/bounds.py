"""A risk control's failure probability from its evidence: the one-sided 95 % Clopper-Pearson
upper bound on x failures in n trials, for each kind of evidence a control declares (test run,
signed validation record, field data). Every problem names the evidence's line."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from scipy.stats import beta

from digital_contrast.keys.errors import KeysError
from digital_contrast.qms.risk.evidence import control_evidence
from digital_contrast.qms.risk.schema import (
    Control,
    CriterionRef,
    FieldEvidence,
    FieldRecord,
    TestsEvidence,
    ValidationEvidence,
)
from digital_contrast.qms.trust import repository_keys

CONFIDENCE = 0.95
VALIDATION_PURPOSE = "validation-record"  # as `validate` signs it (model.validation_record)


def clopper_pearson_upper(failures: int, trials: int, confidence: float = CONFIDENCE) -> float:
    """One-sided upper confidence bound on a failure probability after `failures` in `trials`
    (exact binomial); 1.0 without trials or when every trial failed."""
    if failures < 0 or trials < 0 or failures > trials:
        raise ValueError(f"need 0 <= failures <= trials, got {failures} of {trials}")
    if trials == 0 or failures == trials:
        return 1.0
    return float(beta.ppf(confidence, failures + 1, trials - failures))


@dataclass(frozen=True)
class Count:
    """One piece of evidence: `failures` in `trials`, where it comes from, and its bound."""

    kind: str
    source: str
    trials: int
    failures: int
    note: str = ""

    @property
    def bound(self) -> float:
        return clopper_pearson_upper(self.failures, self.trials)

    def describe(self) -> str:
        return (f"{self.kind} {self.source}: {self.failures} of {self.trials} failed, bound "
                f"{self.bound:.3g}" + (f" ({self.note})" if self.note else ""))


@dataclass(frozen=True)
class ControlBound:
    """A control's failure bound. Several pieces of evidence each bound one way the control
    can fail, so the control's bound is their sum (Boole), at most 1; none gives 1 (no
    credit) with its reason."""

    control: str
    counts: tuple[Count, ...] = ()
    no_credit: str | None = None
    problems: tuple[tuple[tuple[str | int, ...], str], ...] = field(default=())

    @property
    def bound(self) -> float:
        if not self.counts:
            return 1.0
        return min(1.0, math.fsum(c.bound for c in self.counts))

    def describe(self) -> str:
        if not self.counts:
            return f"{self.control}: no credit (bound 1): {self.no_credit or 'no evidence'}"
        return f"{self.control}: bound {self.bound:.3g} from " + "; ".join(
            c.describe() for c in self.counts)


def count_from_tests(control: Control, test_outcomes: dict[str, str],
                requirement_tests: dict[str, list[str]],
                accepted: frozenset[str]) -> Count:
    """n: the distinct verifying tests that ran; x: those that failed, a test that documents a
    known anomaly (skipped or xfailed) counting as a failure. A test skipped for any other
    reason, or not in the run, is no trial."""
    tests = control_evidence(control, test_outcomes, requirement_tests, accepted).tests
    ran = {n: o for n, o in tests.items() if o in ("passed", "failed") or n in accepted}
    failed = sum(o != "passed" for o in ran.values())
    return Count("tests", "in the test run", len(ran), failed,
                 f"{len(tests) - len(ran)} not run" if len(tests) > len(ran) else "")


@dataclass(frozen=True)
class SignedValidation:
    """What a control may read from a signed validation record: its per-criterion values and
    the cases of each stratum (from the protocol the record pins by hash)."""

    model: str
    passed: bool
    evidence: str
    criteria: dict[tuple[str, str], dict[str, Any]]
    stratum_cases: int


class EvidenceError(ValueError):
    """Evidence that cannot be read; the message names the file and why."""


def read_signed_validation(path: Path, root: Path) -> SignedValidation:
    """The record's payload, its signature verified against the release keys committed in the
    repository (qms/trust.py), with the stratum size from its protocol, which must still have
    the hash the record names."""
    try:
        raw_record = path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"{_rel(path, root)} cannot be read ({type(exc).__name__})") \
            from None
    try:
        payload, _ = repository_keys(root).open_document(raw_record, VALIDATION_PURPOSE,
                                                         _rel(path, root))
    except KeysError as exc:
        raise EvidenceError(f"{_rel(path, root)} is not accepted as a signed validation record "
                            f"({exc.code}): {exc.detail}") from None
    try:
        criteria = {(c["metric"], c["stratum"]): c for c in payload["criteria"]}
        protocol = root / payload["protocol"]
        digest = payload["protocol_sha256"]
        model = f"{payload['model_name']} {payload['model_version']}"
        evidence = str(payload["evidence"])
    except (KeyError, TypeError):
        raise EvidenceError(f"{_rel(path, root)}: payload lacks criteria, protocol or model") \
            from None
    try:
        raw = protocol.read_bytes()
    except OSError:
        raise EvidenceError(f"{_rel(path, root)}: its protocol {payload['protocol']} is "
                            "missing") from None
    if hashlib.sha256(raw).hexdigest() != digest:
        raise EvidenceError(f"{_rel(path, root)}: its protocol {payload['protocol']} changed "
                            "since the record (hash differs): the stratum size is unknown")
    cases = ((yaml.safe_load(raw) or {}).get("dataset") or {}).get("cases_per_stratum")
    if not isinstance(cases, int) or cases < 1:
        raise EvidenceError(f"{_rel(path, root)}: its protocol names no cases_per_stratum")
    passed = all(_criterion_passed(c) for c in criteria.values())
    return SignedValidation(model, passed, evidence, criteria, cases)


def _criterion_passed(c: dict[str, Any]) -> bool:
    """As `model.validation_record.Criterion.passed` (SI-QMS reads the file, not the model
    item): never trusted from the file, an unmeasured value never passes."""
    value, threshold = c.get("value"), c.get("threshold")
    if value is None or threshold is None or math.isnan(value):
        return False
    return {">=": value >= threshold, "<=": value <= threshold, ">": value > threshold,
            "<": value < threshold}.get(c.get("op"), False)


def per_case_failures(c: dict[str, Any], cases: int) -> tuple[int, str]:
    """Failing cases of a criterion that every case must meet, from the signed value alone.

    worst: passed means no case failed; failed means at least one did, but the record keeps
    only the worst, so every case is counted as failed (no credit). mean of a 0/1 metric
    required of every case (>= 1 or <= 0): the fraction gives the count. A median or any
    other rate bounds no per-case failure rate (EvidenceError)."""
    statistic, op, threshold, value = (c.get("statistic"), c.get("op"), c.get("threshold"),
                                       c.get("value"))
    if statistic == "worst":
        if _criterion_passed(c):
            return 0, ""
        return cases, "worst case failed; the record keeps no count, so every case is counted"
    if statistic == "mean" and (op, threshold) in ((">=", 1), ("<=", 0)):
        if value is None or math.isnan(value):
            return cases, "not measured, so every case is counted"
        share = 1.0 - value if op == ">=" else value
        return round(share * cases), ""
    raise EvidenceError(f"{statistic} {c.get('metric')} ({c.get('stratum')}) is not required "
                        "of every case: it bounds no per-case failure rate")


def validation_count(ev: ValidationEvidence, root: Path) -> Count:
    """Cases of the named criteria's strata; a case fails if it fails any of them (per stratum
    at most the sum of the criteria's failing cases, at most the stratum's cases)."""
    record = read_signed_validation(root / ev.record, root)
    failing: dict[str, int] = {}
    notes = []
    for ref in ev.criteria:
        found = record.criteria.get((ref.metric, ref.stratum))
        if found is None:
            raise EvidenceError(_unknown(ev, ref))
        x, note = per_case_failures(found, record.stratum_cases)
        failing[ref.stratum] = min(record.stratum_cases, failing.get(ref.stratum, 0) + x)
        if note:
            notes.append(f"{ref.describe()}: {note}")
    return Count("validation", f"{record.model} ({ev.record})",
                 record.stratum_cases * len(failing), sum(failing.values()), "; ".join(notes))


def _unknown(ev: ValidationEvidence, ref: CriterionRef) -> str:
    return f"{ev.record} has no criterion {ref.describe()}"


def field_count(ev: FieldEvidence, root: Path, control_id: str) -> Count:
    path = root / ev.record
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
        record = FieldRecord.model_validate(data)
    except (OSError, yaml.YAMLError):
        raise EvidenceError(f"{ev.record} cannot be read") from None
    except ValidationError as exc:
        raise EvidenceError(f"{ev.record} is not a field-data record: "
                            f"{exc.errors()[0]['msg']}") from None
    if record.control != control_id:
        raise EvidenceError(f"{ev.record} is field data of {record.control}, not {control_id}")
    return Count("field", f"{ev.record} ({record.source}, {record.period})", record.uses,
                 record.failures)


def control_bound(control: Control, test_outcomes: dict[str, str],
                  requirement_tests: dict[str, list[str]], root: Path,
                  accepted: frozenset[str] = frozenset()) -> ControlBound:
    """The control's failure bound; evidence that cannot be read counts as none, and its
    problem is kept with its location in `problems`."""
    counts: list[Count] = []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for n, ev in enumerate(control.evidence):
        try:
            if isinstance(ev, TestsEvidence):
                counts.append(count_from_tests(control, test_outcomes, requirement_tests, accepted))
            elif isinstance(ev, ValidationEvidence):
                counts.append(validation_count(ev, root))
            else:
                counts.append(field_count(ev, root, control.id))
        except EvidenceError as exc:
            problems.append((("evidence", n), f"{control.id}: evidence not usable: {exc}"))
            counts.append(Count(ev.kind, "unreadable", 0, 0, "no credit"))
    return ControlBound(control.id, tuple(counts), control.no_credit, tuple(problems))


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
