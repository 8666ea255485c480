"""Retention: remove imaging data older than a cutoff, keep the records that must outlive it.

Whole studies go (their received and produced series, instances and files) once nothing in them
is newer than the cutoff and no job on them is queued or running. Audit events stay untouched.
Job rows stay, de-identified: the link to the series and every field that could lead back to
the patient are cleared; use case, states, timings, model, bundle hash and error code remain.

Crash safety: rows are deleted in one transaction that also journals the files to remove
(`file_deletions`); files are removed after the commit, then their journal rows. An interrupted
purge therefore leaves at worst files without rows, never rows without files, and the next run
finishes the journal first. A de-identified job's own files (map previews and NIfTI, see
`job_artifacts`) are removed after the commit too; every run sweeps the folders of all
de-identified jobs, so an interrupted run is finished by the next.
"""

import logging
from dataclasses import astuple, dataclass
from datetime import datetime

from sqlalchemy import Select, delete, exists, select, update
from sqlalchemy.orm import Session

from digital_contrast.store.columns import utcnow
from digital_contrast.store.database import begin_write
from digital_contrast.store.enums import JobState
from digital_contrast.store.instance_store import InstanceStore
from digital_contrast.store.job_artifacts import JobArtifacts
from digital_contrast.store.tables import FileDeletion, Instance, Job, Series, Study

log = logging.getLogger(__name__)
_BATCH = 200  # studies per transaction: bounded locks and statement sizes


@dataclass(frozen=True)
class PurgeResult:
    studies: int = 0
    series: int = 0
    instances: int = 0
    files: int = 0
    jobs_deidentified: int = 0
    job_folders: int = 0  # job artifact folders (map previews, NIfTI) removed

    def __add__(self, other: "PurgeResult") -> "PurgeResult":
        return PurgeResult(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def purge(session: Session, instance_store: InstanceStore, older_than: datetime, *,
          site: str | None = None, artifacts: JobArtifacts | None = None) -> PurgeResult:
    """Purge everything older than `older_than` (aware UTC). Commits; use a session of its own.
    Re-runnable: a second run after an interruption finishes the work and counts only it."""
    session.commit()
    total = PurgeResult(files=_drain_file_journal(session, instance_store))
    while True:
        batch = _delete_rows(session, older_than, site)
        if batch.studies == 0:
            break
        total += batch + PurgeResult(files=_drain_file_journal(session, instance_store))
    if artifacts is not None:
        total += PurgeResult(job_folders=_sweep_job_artifacts(session, artifacts))
    log.info("retention purge: %d studies, %d series, %d instances, %d files, "
             "%d jobs de-identified, %d job folders", total.studies, total.series,
             total.instances, total.files, total.jobs_deidentified, total.job_folders)
    return total


def _sweep_job_artifacts(session: Session, artifacts: JobArtifacts) -> int:
    """Remove the artifact folders of de-identified jobs (their maps show the patient)."""
    present = artifacts.job_ids()
    removed = 0
    for chunk in range(0, len(present), 500):
        ids = present[chunk:chunk + 500]
        for job_id in session.scalars(select(Job.id).where(
                Job.id.in_(ids), Job.deidentified_at.is_not(None))):
            removed += artifacts.remove(job_id)
    session.rollback()
    return removed


def _expired_studies(older_than: datetime, site: str | None) -> Select[tuple[int]]:
    recent_series = exists().where(Series.study_id == Study.id, Series.updated_at >= older_than)
    active_job = exists().where(Job.series_id == Series.id, Series.study_id == Study.id,
                                Job.state.in_((JobState.QUEUED, JobState.RUNNING)))
    query = select(Study.id).where(Study.created_at < older_than, ~recent_series, ~active_job)
    return query.where(Study.site == site) if site is not None else query


def _delete_rows(session: Session, older_than: datetime, site: str | None) -> PurgeResult:
    begin_write(session)
    study_ids = list(session.scalars(_expired_studies(older_than, site)
                                     .order_by(Study.id).limit(_BATCH)))
    if not study_ids:
        session.rollback()
        return PurgeResult()
    series_ids = list(session.scalars(select(Series.id).where(Series.study_id.in_(study_ids))))
    paths = set(session.scalars(select(Instance.file_path)
                                .where(Instance.series_id.in_(series_ids))))
    jobs = session.execute(
        update(Job).where(Job.series_id.in_(series_ids))
        .values(series_id=None, instance_set_sha256=None, output_series_uid=None,
                idempotency_key=None, result=None, error_detail=None,
                deidentified_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    session.add_all(FileDeletion(file_path=path) for path in sorted(paths))
    instances = session.execute(delete(Instance).where(Instance.series_id.in_(series_ids))
                                .execution_options(synchronize_session=False)).rowcount
    session.execute(delete(Series).where(Series.id.in_(series_ids))
                    .execution_options(synchronize_session=False))
    session.execute(delete(Study).where(Study.id.in_(study_ids))
                    .execution_options(synchronize_session=False))
    session.commit()
    session.expunge_all()  # deleted and de-identified rows must not linger in the session
    return PurgeResult(len(study_ids), len(series_ids), instances, 0, jobs)


def _drain_file_journal(session: Session, instance_store: InstanceStore) -> int:
    """Remove journaled files that no instance row references any more; then their entries."""
    removed = 0
    while True:
        begin_write(session)
        pending = list(session.scalars(select(FileDeletion).order_by(FileDeletion.id)
                                       .limit(1000)))
        if not pending:
            session.rollback()
            return removed
        for entry in pending:
            # Identical bytes share one file (e.g. the same instance at two sites).
            referenced = session.scalar(select(exists().where(
                Instance.file_path == entry.file_path)))
            # A file put again after it was journaled belongs to a new ingest: keep it.
            if not referenced and instance_store.delete(entry.file_path,
                                                        unless_put_since=entry.created_at):
                removed += 1
            session.delete(entry)
        session.commit()
