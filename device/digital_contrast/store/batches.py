"""Batches of a cohort synthesis: the batch of a manifest, its cases and their outcomes.

A case is recorded once, with its job or the code it was refused with before a job existed; a
batch resumed after a stop skips recorded cases, so no finished case is ever submitted again.
Functions flush but never commit: the caller commits.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from digital_contrast.store.enums import JobState
from digital_contrast.store.tables import Batch, BatchCase, EmissionRecord, Job


@dataclass(frozen=True)
class BatchProgress:
    total: int  # cases in the manifest
    recorded: int  # cases submitted or refused so far
    succeeded: int
    refused: int  # refused before a job existed, or the job rejected the series
    failed: int

    @property
    def finished(self) -> int:
        return self.succeeded + self.refused + self.failed


def batch_for_manifest(session: Session, site: str, manifest_sha256: str) -> Batch | None:
    return session.scalars(select(Batch).where(Batch.site == site,
                                               Batch.manifest_sha256 == manifest_sha256)).first()


def get_batch(session: Session, site: str, batch_id: str) -> Batch | None:
    batch = session.get(Batch, batch_id)
    return batch if batch is not None and batch.site == site else None


def recorded_case_ids(session: Session, batch_id: str) -> set[str]:
    return set(session.scalars(select(BatchCase.case_id).where(BatchCase.batch_id == batch_id)))


def batch_progress(session: Session, batch: Batch) -> BatchProgress:
    state = Job.state
    refused = (BatchCase.refusal_code.is_not(None)) | (state == JobState.REJECTED)
    row = session.execute(
        select(func.count(BatchCase.id),
               func.sum(case((state == JobState.SUCCEEDED, 1), else_=0)),
               func.sum(case((refused, 1), else_=0)),
               func.sum(case((state == JobState.FAILED, 1), else_=0)))
        .select_from(BatchCase).outerjoin(Job, Job.id == BatchCase.job_id)
        .where(BatchCase.batch_id == batch.id)).one()
    return BatchProgress(batch.case_count, row[0], row[1] or 0, row[2] or 0, row[3] or 0)


def batch_outcomes(session: Session, batch: Batch) -> list[dict[str, Any]]:
    """One row per recorded case, in manifest order: its outcome, code, job, output series and
    the energy and emissions its job measured (None where not measured)."""
    rows = session.execute(
        select(BatchCase, Job.state, Job.error_code, Job.output_series_uid,
               EmissionRecord.energy_kwh, EmissionRecord.emissions_kg_co2e,
               EmissionRecord.avoided_kg_co2e, EmissionRecord.energy_status)
        .select_from(BatchCase).outerjoin(Job, Job.id == BatchCase.job_id)
        .outerjoin(EmissionRecord, EmissionRecord.job_id == BatchCase.job_id)
        .where(BatchCase.batch_id == batch.id).order_by(BatchCase.ordinal)).all()
    return [{"case_id": c.case_id, "series_instance_uid": c.series_instance_uid,
             "outcome": _outcome(c, state), "code": c.refusal_code or code,
             "job_id": c.job_id, "output_series_instance_uid": output,
             "energy_kwh": energy, "emissions_kg_co2e": emitted,
             "avoided_kg_co2e": avoided, "energy_status": status}
            for c, state, code, output, energy, emitted, avoided, status in rows]


def _outcome(batch_case: BatchCase, state: JobState | None) -> str:
    if batch_case.refusal_code is not None or state == JobState.REJECTED:
        return "refused"
    if state == JobState.SUCCEEDED:
        return "succeeded"
    if state == JobState.FAILED:
        return "failed"
    return "pending"
