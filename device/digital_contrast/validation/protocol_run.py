"""Running a protocol through the clinical DICOM path, case by case, into a validation record.

Each case goes the way a clinic's series goes, through the very pipeline a job runs
(`pipeline.run_clinical_path`): NCCT written as DICOM -> read by the product's series reader ->
conformity, synthesis by the locked core and its confidence -> labelled derived series (LOW
CONFIDENCE when it is) and uncertainty map written as DICOM -> series read back -> scored
against the reference, with the case's confidence. The run is staged in a hidden folder
whose `run.json` fixes the protocol's hash before the first case; the record, per-case table
and report appear under `<out>/<run-id>/` only when the run is complete and the protocol file
still has that hash.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from digital_contrast import __version__
from digital_contrast.config import REPO_ROOT
from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.inference.locked_model import LockedModel
from digital_contrast.inference.synthesize import platform_info
from digital_contrast.keys.signing import Signer
from digital_contrast.model.validation_record import Criterion, Rule, ValidationRecord
from digital_contrast.pipeline import run_clinical_path
from digital_contrast.validation.cases import ValidationCase, dataset_cases
from digital_contrast.validation.errors import ValidationRunError
from digital_contrast.validation.metrics import (
    LOW_CONFIDENCE,
    METRICS,
    UNCERTAIN_LUMEN_FRACTION,
    with_confidence,
)
from digital_contrast.validation.protocol import CohortDataset, FixedProtocol
from digital_contrast.validation.protocol_commit import ProtocolCommit, require_committed
from digital_contrast.validation.report import write_report
from digital_contrast.validation.results import CASES_COMPLETED, CaseOutcome, ValidationRun

RECORD = "validation_record.json"
RUN = "run.json"
CASES_CSV = "cases.csv"


def environment() -> dict[str, str]:
    """What ran the validation: platform, library versions, product version and commit."""
    info = platform_info() | {"digital_contrast": __version__,
                              "platform": platform.platform()}
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=30, check=True)
        info["git_commit"] = commit.stdout.strip() + (" (uncommitted changes)"
                                                      if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = "unknown (not a git checkout)"
    return info


def run_validation(fixed: FixedProtocol, model: LockedModel, out_root: Path, signer: Signer,
                   *, progress: Callable[[str], None] = lambda line: None) -> ValidationRun:
    """Run `fixed` (from `load_protocol`, whose hash the run records and re-checks at the end)
    on `model`, into `out_root/<run-id>/`; the record is signed with `signer`."""
    protocol = fixed.protocol
    if model.use_case.id != protocol.use_case:
        raise ValidationRunError("PROTOCOL_MISMATCH", f"{fixed.name} validates use case "
                                 f"{protocol.use_case}; the model is for {model.use_case.id}")
    dataset = protocol.dataset
    if isinstance(dataset, CohortDataset) and \
            model.training_cohort_sha256 == dataset.cohort_sha256:
        raise ValidationRunError("DATASET_INVALID", "the model learnt from this cohort: it is "
                                                    "validated on another one")
    commit = require_committed(fixed.path, fixed.sha256, fixed.name)  # before anything runs
    started = datetime.now(UTC)
    run_id = f"{protocol.id}-{started:%Y%m%dT%H%M%SZ}-{model.bundle_sha256[:12]}"
    final = Path(out_root) / run_id
    if final.exists():
        raise ValidationRunError("RUN_EXISTS", f"{final} already exists")
    final.parent.mkdir(parents=True, exist_ok=True)
    # Hidden until complete; an aborted run stays hidden with its reason in run.json.
    stage = Path(tempfile.mkdtemp(prefix=f".incomplete-{run_id}-", dir=final.parent))
    env = environment()
    header = _run_header(run_id, fixed, commit, model, started, env)
    _write_json(stage / RUN, header | {"status": "running"})
    cases: list[CaseOutcome] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dc-validate-") as tmp:
            work = Path(tmp)
            for case in dataset_cases(protocol.dataset, work / "input", fixed.path.parent,
                                      model.use_case.target_phase.value):
                outcome = _run_case(case, model, work / "output" / case.case_id)
                cases.append(outcome)
                progress(_progress_line(outcome))
        fixed.check_unchanged()  # PROTOCOL_CHANGED: no record from moved goalposts
    except DigitalContrastError as exc:  # the staged run stays hidden, saying why it stopped
        _write_json(stage / RUN, header | {"status": "aborted", "code": exc.code,
                                           "detail": exc.detail})
        raise
    criteria = evaluate(protocol.acceptance, cases)
    mark_failed_rules(protocol.acceptance, cases)
    floor = (evaluate(protocol.acceptance, cases, floor=True)
             if any(c.floor_metrics for c in cases) else [])
    record = ValidationRecord(
        bundle_sha256=model.bundle_sha256, use_case=protocol.use_case,
        model_name=model.registered.name, model_version=model.registered.model_version,
        protocol=fixed.name, protocol_sha256=fixed.sha256, protocol_commit=commit.commit,
        run_id=run_id, dataset=protocol.dataset.describe(), criteria=criteria,
        evidence=protocol.evidence, explain=model.explain_evidence)
    run = ValidationRun(run_id, final, fixed, model.registered.version, started,
                        datetime.now(UTC), env, cases, record, floor)
    record.save_signed(stage / RECORD, signer)
    _write_cases_csv(stage / CASES_CSV, run)
    _write_json(stage / RUN, header | {
        "status": "complete", "finished": run.finished.isoformat(), "passed": record.passed,
        "floor": [c.model_dump() for c in floor],
        "floor_failures": [c.describe() for c in run.floor_failures],
        "cases": [asdict(c) for c in cases]})
    write_report(stage, run)
    os.replace(stage, final)
    return run


def _run_header(run_id: str, fixed: FixedProtocol, commit: ProtocolCommit, model: LockedModel,
                started: datetime, env: dict[str, str]) -> dict:
    return {"run_id": run_id, "started": started.isoformat(),
            "protocol": {"path": fixed.name, "id": fixed.protocol.id,
                         "version": fixed.protocol.version, "sha256": fixed.sha256,
                         "commit": commit.commit, "repository_path": commit.path,
                         "fixed_at": started.isoformat()},
            "model": {"name": model.registered.name, "version": model.registered.model_version,
                      "registry_version": model.registered.version,
                      "bundle_sha256": model.bundle_sha256},
            "evidence": fixed.protocol.evidence, "environment": env}


def _run_case(case: ValidationCase, model: LockedModel, out: Path) -> CaseOutcome:
    outcome = CaseOutcome(case.case_id, case.seed, case.stratum)
    start = time.perf_counter()
    try:
        result = run_clinical_path(case.ncct, model.use_case, lambda _: model, out)
        assert result.series is not None
        outcome.warnings = result.warnings
        outcome.output_series_uid = result.series.series_instance_uid
        outcome.output_sha256 = result.synthesis.output_sha256
        outcome.low_confidence = result.confidence.low_confidence
        metrics = with_confidence(case.score(result.ncct, read_series(result.series.folder)),
                                  result.confidence.low_confidence)
        metrics[LOW_CONFIDENCE] = float(result.confidence.low_confidence)
        if result.confidence.uncertain_fraction is not None:  # None: uncalibrated bundle
            metrics[UNCERTAIN_LUMEN_FRACTION] = result.confidence.uncertain_fraction
        outcome.metrics = measured(metrics)
        if case.floor is not None:
            oracle = case.floor(result.ncct, model.network_config.spacing_mm)
            # The oracle never labels its result: a lesion it loses counts against it.
            outcome.floor_metrics = measured(with_confidence(case.score(result.ncct, oracle),
                                                             False))
    except DigitalContrastError as exc:
        outcome.failure_code, outcome.failure_detail = exc.code, exc.detail
    except Exception as exc:  # a defect fails its case, listed in the report, not the run
        outcome.failure_code = "INTERNAL_ERROR"
        outcome.failure_detail = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(out, ignore_errors=True)
    outcome.seconds = round(time.perf_counter() - start, 2)
    return outcome


def measured(metrics: dict[str, float]) -> dict[str, float]:
    """A metric that cannot be measured on a case (no thick thrombus to segment) is left out."""
    return {k: round(v, 4) for k, v in metrics.items() if math.isfinite(v)}


def _finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and not math.isnan(v)]


def _statistic(rule: Rule, values: list[float]) -> float | None:
    if not values:
        return None
    if rule.statistic == "worst":
        return max(values) if rule.op in ("<=", "<") else min(values)
    return statistics.mean(values) if rule.statistic == "mean" else statistics.median(values)


def evaluate(rules: list[Rule], cases: list[CaseOutcome], *,
             floor: bool = False) -> list[Criterion]:
    """Each rule's statistic over the completed cases of its stratum, plus `cases_completed`
    (a case that could not be run fails the protocol). `floor`: the oracle's metrics instead
    of the model's, and no `cases_completed`."""
    criteria = []
    for rule in rules:
        if floor and rule.metric in METRICS and not METRICS[rule.metric].of_images:
            continue  # the oracle has no confidence of its own to judge
        scored = [c.floor_metrics if floor else c.metrics for c in cases
                  if c.completed and c.stratum == rule.stratum]
        value = _statistic(rule, _finite([m.get(rule.metric) for m in scored]))
        criteria.append(Criterion(**rule.model_dump(),
                                  value=None if value is None else round(value, 4)))
    if not floor:
        criteria.append(Criterion(metric=CASES_COMPLETED, op=">=", threshold=len(cases),
                                  value=sum(c.completed for c in cases), stratum="all",
                                  statistic="worst"))
    return criteria


def mark_failed_rules(rules: list[Rule], cases: list[CaseOutcome]) -> None:
    """Note on each case the every-case ('worst') rules it misses itself."""
    for rule in (r for r in rules if r.statistic == "worst"):
        for case in cases:
            if case.completed and case.stratum == rule.stratum:
                single = Criterion(**rule.model_dump(), value=case.metrics.get(rule.metric))
                if _finite([single.value]) and not single.passed:
                    case.failed_rules.append(rule.describe())


def _progress_line(outcome: CaseOutcome) -> str:
    if not outcome.completed:
        return f"{outcome.case_id}: FAILED {outcome.failure_code} {outcome.failure_detail}"
    return f"{outcome.case_id} ({outcome.stratum}): scored in {outcome.seconds:.1f} s"


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def _write_cases_csv(path: Path, run: ValidationRun) -> None:
    metrics = sorted({k for c in run.cases for k in c.metrics} - {LOW_CONFIDENCE})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "seed", "stratum", "completed", "failure_code",
                         "failure_detail", "failed_rules", "seconds", "output_series_uid",
                         "output_sha256", "low_confidence", *metrics])
        for c in run.cases:
            writer.writerow([c.case_id, c.seed, c.stratum, c.completed, c.failure_code or "",
                             c.failure_detail or "", "; ".join(c.failed_rules), c.seconds,
                             c.output_series_uid or "", c.output_sha256 or "",
                             "" if c.low_confidence is None else c.low_confidence,
                             *(c.metrics.get(k, "") for k in metrics)])
