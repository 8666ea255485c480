"""The durable outbox: deliveries of a job's result series to destinations.

A delivery is queued in the transaction that makes its job succeed (destinations marked
`auto`) or on request; a delivery worker claims a due one under a lease (as jobs are claimed:
FOR UPDATE SKIP LOCKED on PostgreSQL, one writer on SQLite), sends it, and records it
delivered or schedules the next attempt with exponential backoff; after the last attempt it
is failed until an operator re-queues it. A worker that dies mid-send leaves its delivery to
be claimed again once the lease expires. Re-sending an instance a peer already has is
harmless for a PACS, so a retried delivery sends everything again.
"""

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, joinedload

from digital_contrast.store.columns import utcnow
from digital_contrast.store.database import begin_write
from digital_contrast.store.enums import DeliveryState
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.tables import Delivery, Destination, Instance, Job, Series

FIRST_RETRY_S = 30.0
LONGEST_WAIT_S = 3600.0


def retry_delay_s(attempts: int) -> float:
    """Wait after the `attempts`-th failed attempt: 30 s, 60 s, 120 s ... at most an hour."""
    return min(FIRST_RETRY_S * 2 ** max(0, attempts - 1), LONGEST_WAIT_S)


def result_series_uids(job: Job) -> list[str]:
    """The series a job published: its synthetic series and each map's two series."""
    maps = (job.result or {}).get("maps", [])
    uids = {job.output_series_uid, *(m.get(k) for m in maps for k in (
        "parametric_map_series_uid", "secondary_capture_series_uid"))}
    return sorted(u for u in uids if u)


def enqueue(db: Session, job: Job, destination: Destination, series_uids: list[str],
            requested_by: str, *, now: datetime | None = None) -> Delivery:
    if not series_uids:
        raise StoreError(StoreErrorCode.DELIVERY_NOTHING_TO_SEND,
                         f"job {job.id} has no result series to deliver")
    delivery = Delivery(site=job.site, job_id=job.id, destination_id=destination.id,
                        series_uids=sorted(series_uids), state=DeliveryState.PENDING,
                        next_attempt_at=now or utcnow(), requested_by=requested_by)
    db.add(delivery)
    db.flush()
    return delivery


def enqueue_automatic(db: Session, job: Job, series_uids: list[str]) -> list[Delivery]:
    """A delivery to every enabled `auto` destination of the job's site."""
    if not series_uids:
        return []
    destinations = db.scalars(select(Destination).where(
        Destination.site == job.site, Destination.auto.is_(True),
        Destination.disabled_at.is_(None)).order_by(Destination.id))
    return [enqueue(db, job, d, series_uids, "auto") for d in destinations]


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(and_(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now),
               and_(Delivery.state == DeliveryState.SENDING, Delivery.lease_expires_at < now))


def claim_next_delivery(db: Session, worker_id: str, lease_seconds: float, *,
                        now: datetime | None = None) -> Delivery | None:
    """The most overdue delivery, now held by `worker_id`; None when nothing is due. Commit
    soon after (on SQLite the claim holds the write lock until then)."""
    now = now or utcnow()
    # Polled every second: an empty outbox costs one read, not the database's write lock.
    if db.scalar(select(Delivery.id).where(_claimable(now)).limit(1)) is None:
        return None
    begin_write(db)
    candidate = db.scalars(
        select(Delivery).where(_claimable(now))
        .order_by(Delivery.next_attempt_at, Delivery.id).limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)).first()
    if candidate is None:
        return None
    return db.scalars(
        update(Delivery).where(Delivery.id == candidate.id, _claimable(now))
        .values(state=DeliveryState.SENDING, lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=Delivery.attempts + 1)
        .returning(Delivery), execution_options={"populate_existing": True}).first()


def _held(db: Session, delivery_id: str, worker_id: str) -> Delivery | None:
    """The delivery if this worker still holds it; None when its lease went to another."""
    delivery = db.get(Delivery, delivery_id, with_for_update=True, populate_existing=True)
    if delivery is None or delivery.state != DeliveryState.SENDING or \
            delivery.lease_owner != worker_id:
        return None
    return delivery


def mark_delivered(db: Session, delivery_id: str, worker_id: str, instances_sent: int, *,
                   now: datetime | None = None) -> Delivery | None:
    begin_write(db)
    delivery = _held(db, delivery_id, worker_id)
    if delivery is not None:
        delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, now or utcnow()
        delivery.instances_sent, delivery.last_error = instances_sent, None
        delivery.lease_owner = delivery.lease_expires_at = None
        db.flush()
    return delivery


def mark_attempt_failed(db: Session, delivery_id: str, worker_id: str, error: str, *,
                        max_attempts: int, retryable: bool = True,
                        now: datetime | None = None) -> Delivery | None:
    """Schedule the next attempt, or fail the delivery when attempts are exhausted or the
    failure cannot heal by itself. `error` is a status or code, never patient data."""
    begin_write(db)
    now = now or utcnow()
    delivery = _held(db, delivery_id, worker_id)
    if delivery is None:
        return None
    delivery.last_error = error[:1000]
    delivery.lease_owner = delivery.lease_expires_at = None
    if retryable and delivery.attempts < max_attempts:
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay_s(delivery.attempts))
    else:
        delivery.state = DeliveryState.FAILED
    db.flush()
    return delivery


def requeue(db: Session, site: str, delivery_id: str, *,
            now: datetime | None = None) -> Delivery:
    """A failed delivery queued again now, with a fresh count of attempts."""
    begin_write(db)
    delivery = db.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.site != site:
        raise StoreError(StoreErrorCode.DELIVERY_NOT_FOUND, f"no delivery {delivery_id}")
    if delivery.state != DeliveryState.FAILED:
        raise StoreError(StoreErrorCode.DELIVERY_INVALID_STATE,
                         f"delivery {delivery_id} is {delivery.state.value}, not failed")
    delivery.state, delivery.attempts = DeliveryState.PENDING, 0
    delivery.next_attempt_at = now or utcnow()
    db.flush()
    return delivery


def delivery_instances(db: Session, delivery: Delivery) -> list[Instance]:
    """The instances of the delivery's series, series by series in instance order."""
    return list(db.scalars(
        select(Instance).join(Series).where(Instance.site == delivery.site,
                                            Series.series_instance_uid.in_(delivery.series_uids))
        .order_by(Series.series_instance_uid, Instance.instance_number, Instance.id)))


def deliveries_of_jobs(db: Session, job_ids: Collection[str]) -> dict[str, list[Delivery]]:
    """Each job's deliveries, oldest first, with their destinations: one query for a page of
    jobs (a query per job made the job listing slow)."""
    by_job: dict[str, list[Delivery]] = defaultdict(list)
    if job_ids:
        for delivery in db.scalars(select(Delivery).where(Delivery.job_id.in_(job_ids))
                                   .options(joinedload(Delivery.destination))
                                   .order_by(Delivery.created_at, Delivery.id)):
            by_job[delivery.job_id].append(delivery)
    return by_job


def list_deliveries(db: Session, site: str | None = None, *,
                    state: DeliveryState | None = None, limit: int = 100) -> list[Delivery]:
    query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id).limit(limit)
    if site is not None:
        query = query.where(Delivery.site == site)
    if state is not None:
        query = query.where(Delivery.state == state)
    return list(db.scalars(query))
