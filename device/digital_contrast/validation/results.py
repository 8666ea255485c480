"""What a validation run produced: the outcome of each case and the run as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from digital_contrast.model.validation_record import ValidationRecord
from digital_contrast.validation.protocol import FixedProtocol

CASES_COMPLETED = "cases_completed"  # the implicit criterion: every case went through


@dataclass
class CaseOutcome:
    case_id: str
    seed: int | None
    stratum: str
    metrics: dict[str, float] = field(default_factory=dict)
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

    @property
    def failed_cases(self) -> list[CaseOutcome]:
        return [c for c in self.cases if not c.completed or c.failed_rules]
