"""The per-host measured-inference slot: a lease row keyed by host name.

A holder takes the slot when it is free, expired or already its own, renews it while it
measures, and deletes it when done. Taking it is one guarded statement, so two holders never
both succeed: PostgreSQL locks the row, SQLite has a single writer (`begin_write`).
"""

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digital_contrast.store.columns import utcnow
from digital_contrast.store.database import begin_write
from digital_contrast.store.tables import MeasurementSlot


def try_acquire(session: Session, host: str, holder: str, lease: timedelta,
                now: datetime | None = None) -> bool:
    """Take (or keep) the host's slot for `lease`; False while another holder has it."""
    now = now or utcnow()
    begin_write(session)
    taken = session.execute(
        update(MeasurementSlot)
        .where(MeasurementSlot.host == host,
               or_(MeasurementSlot.holder == holder, MeasurementSlot.expires_at <= now))
        .values(holder=holder, expires_at=now + lease)).rowcount
    if taken:
        session.commit()
        return True
    if session.scalar(select(MeasurementSlot.host).where(MeasurementSlot.host == host)):
        session.rollback()
        return False
    try:
        session.add(MeasurementSlot(host=host, holder=holder, expires_at=now + lease))
        session.commit()
    except IntegrityError:  # another holder inserted it first
        session.rollback()
        return False
    return True


def renew(session: Session, host: str, holder: str, lease: timedelta) -> bool:
    """Extend the lease; False when the slot is no longer this holder's."""
    begin_write(session)
    kept = session.execute(update(MeasurementSlot)
                           .where(MeasurementSlot.host == host, MeasurementSlot.holder == holder)
                           .values(expires_at=utcnow() + lease)).rowcount
    session.commit()
    return bool(kept)


def release(session: Session, host: str, holder: str) -> None:
    begin_write(session)
    session.execute(delete(MeasurementSlot).where(MeasurementSlot.host == host,
                                                  MeasurementSlot.holder == holder))
    session.commit()
