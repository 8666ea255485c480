"""The durable job table: idempotent submission, leased claims, and a state history.

States: queued -> running -> succeeded | rejected | failed. A running job whose lease expired
(its worker died) is claimable again. Every state change adds a `job_events` row in the same
transaction. Functions flush but never commit: the caller commits (promptly, after a claim).

Exclusive claims: PostgreSQL locks the candidate row with FOR UPDATE SKIP LOCKED, so concurrent
workers take different jobs; SQLite has a single writer (BEGIN IMMEDIATE, see `begin_write`).
The UPDATE is guarded by the same condition either way, so a job is never claimed twice.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digital_contrast.store.columns import utcnow
from digital_contrast.store.database import begin_write
from digital_contrast.store.enums import JobState
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.tables import Job, JobEvent


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool  # False: the idempotency key named an existing job


def _event(session: Session, job: Job, from_state: JobState | None, to_state: JobState,
           at: datetime, **detail: Any) -> None:
    session.add(JobEvent(job_id=job.id, at=at, from_state=from_state, to_state=to_state,
                         detail=detail or None))


def _by_key(session: Session, idempotency_key: str) -> Job | None:
    return session.scalars(select(Job).where(Job.idempotency_key == idempotency_key)
                           .execution_options(populate_existing=True)).first()


def _same_request(job: Job, site: str, series_id: int | None, use_case: str,
                  bundle_sha256: str) -> Job:
    if (job.site, job.series_id, job.use_case, job.bundle_sha256) != (
            site, series_id, use_case, bundle_sha256):
        raise StoreError(StoreErrorCode.JOB_CONFLICT,
                         "the idempotency key was already used for another request")
    return job


def submit_job(session: Session, *, site: str, series_id: int | None, use_case: str,
               bundle_sha256: str, model_name: str, model_version: str,
               idempotency_key: str, instance_set_sha256: str | None = None,
               options: dict[str, Any] | None = None, submitted_by: int | None = None,
               now: datetime | None = None) -> Submitted:
    """Queue a job once per idempotency key; the same key returns the job it made first, also
    when two requests race. Reusing a key for another series, use case or bundle is refused
    (JOB_CONFLICT)."""
    begin_write(session)
    existing = _by_key(session, idempotency_key)
    if existing is not None:
        return Submitted(_same_request(existing, site, series_id, use_case, bundle_sha256),
                         False)
    now = now or utcnow()
    job = Job(site=site, series_id=series_id, use_case=use_case, options=options or {},
              instance_set_sha256=instance_set_sha256, bundle_sha256=bundle_sha256,
              model_name=model_name, model_version=model_version,
              idempotency_key=idempotency_key, state=JobState.QUEUED, attempts=0,
              submitted_by=submitted_by, created_at=now)
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
            _event(session, job, None, JobState.QUEUED, now)
    except IntegrityError:
        existing = _by_key(session, idempotency_key)
        if existing is None:  # the integrity error was about something else
            raise
        return Submitted(_same_request(existing, site, series_id, use_case, bundle_sha256),
                         False)
    return Submitted(job, True)


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(Job.state == JobState.QUEUED,
               and_(Job.state == JobState.RUNNING, Job.lease_expires_at < now))


def _take(session: Session, candidate: Job, worker_id: str, lease_seconds: float,
          now: datetime) -> Job | None:
    """Claim `candidate` for `worker_id`, guarded by the claimable condition."""
    from_state, previous_owner = candidate.state, candidate.lease_owner
    claimed = session.scalars(
        update(Job).where(Job.id == candidate.id, _claimable(now))
        .values(state=JobState.RUNNING, lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=Job.attempts + 1, started_at=func.coalesce(Job.started_at, now))
        .returning(Job),
        execution_options={"populate_existing": True}).first()
    if claimed is None:  # taken between our read and write (cannot happen under the locks)
        return None
    detail: dict[str, Any] = {"worker": worker_id, "attempt": claimed.attempts}
    if from_state == JobState.RUNNING:
        detail |= {"reason": "lease expired", "previous_worker": previous_owner}
    _event(session, claimed, from_state, JobState.RUNNING, now, **detail)
    session.flush()
    return claimed


def claim_next_job(session: Session, worker_id: str, lease_seconds: float, *,
                   site: str | None = None, now: datetime | None = None) -> Job | None:
    """Take the oldest queued job, or a running one whose lease expired, for `worker_id`.

    Returns None when there is nothing to do. Commit soon after: on SQLite the claim holds the
    write lock until then.
    """
    begin_write(session)
    now = now or utcnow()
    candidates = select(Job).where(_claimable(now))
    if site is not None:
        candidates = candidates.where(Job.site == site)
    candidate = session.scalars(
        candidates.order_by(Job.created_at, Job.id).limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)).first()
    return None if candidate is None else _take(session, candidate, worker_id, lease_seconds,
                                                 now)


def claim_job(session: Session, job_id: str, worker_id: str, lease_seconds: float, *,
              now: datetime | None = None) -> Job | None:
    """Take this job if it is queued or its lease expired (a message of the Celery executor
    names it); None when it is finished or a live worker holds it. Commit soon after."""
    begin_write(session)
    now = now or utcnow()
    candidate = session.scalars(
        select(Job).where(Job.id == job_id, _claimable(now)).with_for_update()
        .execution_options(populate_existing=True)).first()
    return None if candidate is None else _take(session, candidate, worker_id, lease_seconds,
                                                 now)


def undispatched_jobs(session: Session, limit: int, *, now: datetime | None = None
                      ) -> list[Job]:
    """Jobs waiting for a worker whose message the broker has not confirmed yet, oldest first,
    locked (other dispatchers skip them) until the caller commits. A job left running by an
    embedded worker before the site switched to Celery counts once its lease expired."""
    begin_write(session)
    return list(session.scalars(
        select(Job).where(_claimable(now or utcnow()), Job.dispatched_at.is_(None))
        .order_by(Job.created_at, Job.id).limit(limit).with_for_update(skip_locked=True)))


def _owned(session: Session, job_id: str, worker_id: str) -> Job:
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None:
        raise StoreError(StoreErrorCode.JOB_NOT_FOUND, f"no job {job_id}")
    if job.state != JobState.RUNNING or job.lease_owner != worker_id:
        raise StoreError(StoreErrorCode.JOB_LEASE_LOST,
                         f"job {job_id} is not running for worker {worker_id}")
    return job


def renew_lease(session: Session, job_id: str, worker_id: str, lease_seconds: float, *,
                now: datetime | None = None) -> datetime:
    """Extend the lease of a job the worker holds (JOB_LEASE_LOST when it no longer does)."""
    begin_write(session)
    job = _owned(session, job_id, worker_id)
    job.lease_expires_at = (now or utcnow()) + timedelta(seconds=lease_seconds)
    session.flush()
    return job.lease_expires_at


def finish_job(session: Session, job_id: str, worker_id: str, state: JobState | str, *,
               result: dict[str, Any] | None = None, error_code: str | None = None,
               error_detail: str | None = None, output_series_uid: str | None = None,
               now: datetime | None = None) -> Job:
    """Record the outcome of a job the worker holds: succeeded, rejected or failed."""
    state = JobState(state)
    if not state.terminal:
        raise StoreError(StoreErrorCode.JOB_INVALID_STATE,
                         f"a job finishes as succeeded, rejected or failed, not {state}")
    begin_write(session)
    job = _owned(session, job_id, worker_id)
    now = now or utcnow()
    job.state, job.finished_at, job.lease_expires_at = state, now, None
    job.result, job.error_code, job.error_detail = result, error_code, error_detail
    job.output_series_uid = output_series_uid
    _event(session, job, JobState.RUNNING, state, now, worker=worker_id,
           **({"error_code": error_code} if error_code else {}))
    session.flush()
    return job


def get_job(session: Session, job_id: str, *, site: str | None = None) -> Job | None:
    job = session.get(Job, job_id)
    return job if job is not None and (site is None or job.site == site) else None


PageKey = tuple[datetime, str]  # (created_at, id) of the last job of a page


def list_jobs(session: Session, site: str, state: JobState | str | None = None,
              since: datetime | None = None, *, limit: int | None = None,
              after: PageKey | None = None) -> list[Job]:
    """Jobs of a site, newest first (equal times by id, descending: a total order). `after`
    is the key of the last job of the previous page: the jobs that follow it (keyset
    pagination, read from the (site, created_at, id) and (site, state, created_at, id)
    indexes, so a deep page costs what the first does)."""
    query = select(Job).where(Job.site == site)
    if state is not None:
        query = query.where(Job.state == JobState(state))
    if since is not None:
        query = query.where(Job.created_at >= since)
    if after is not None:
        query = query.where(tuple_(Job.created_at, Job.id) < after)
    query = query.order_by(Job.created_at.desc(), Job.id.desc())
    return list(session.scalars(query.limit(limit) if limit else query))


def job_events(session: Session, job_id: str) -> list[JobEvent]:
    return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id)
                                .order_by(JobEvent.id)))
