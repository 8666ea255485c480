"""What a validation run produced: the outcome of each case and the run as a whole."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from digital_contrast.model.validation_record import Criterion, ValidationRecord
from digital_contrast.validation.protocol import FixedProtocol

CASES_COMPLETED = "cases_completed"  # the implicit criterion: every case went through


@dataclass
class CaseOutcome:
    case_id: str
    seed: int | None
    stratum: str
    metrics: dict[str, float] = field(default_factory=dict)
    floor_metrics: dict[str, float] = field(default_factory=dict)  # the oracle's, same case
    failure_code: str | None = None
    failure_detail: str | None = None
    warnings: list[str] = field(default_factory=list)
    output_series_uid: str | None = None
    output_sha256: str | None = None
    low_confidence: bool | None = None  # labelled LOW CONFIDENCE, as a job would label it
    seconds: float = 0.0
    failed_rules: list[str] = field(default_factory=list)  # per-case criteria it misses

    @property
    def completed(self) -> bool:
        return self.failure_code is None


def stratum_medians(cases: list[CaseOutcome], metric: str, *,
                    floor: bool = False) -> dict[str, float | None]:
    """Median of `metric` (the oracle's with `floor`) over each stratum's completed cases, in
    the order strata first appear; None where it was measured on none."""
    medians: dict[str, float | None] = {}
    for stratum in dict.fromkeys(c.stratum for c in cases):
        values = [v for c in cases if c.completed and c.stratum == stratum
                  for v in [(c.floor_metrics if floor else c.metrics).get(metric)]
                  if v is not None]
        medians[stratum] = round(statistics.median(values), 4) if values else None
    return medians


@dataclass(frozen=True)
class ValidationRun:
    run_id: str
    folder: Path
    protocol: FixedProtocol
    registry_version: str
    started: datetime
    finished: datetime
    environment: dict[str, str]
    cases: list[CaseOutcome]
    record: ValidationRecord
    # The protocol's criteria met by the oracle on the same cases (empty: no floor, paired).
    floor: list[Criterion] = field(default_factory=list)

    def floor_of(self, criterion: Criterion) -> Criterion | None:
        """The oracle's value of the same criterion; None where the floor does not judge it."""
        return next((c for c in self.floor if c.terms == criterion.terms), None)

    @property
    def floor_failures(self) -> list[Criterion]:
        """Criteria not even the oracle meets: no model can, and the protocol needs review."""
        return [c for c in self.floor if not c.passed]

    @property
    def failed_cases(self) -> list[CaseOutcome]:
        return [c for c in self.cases if not c.completed or c.failed_rules]
