"""Failed API keys per client address, in the database so that every service process (and
host) of the site counts them together: too many within the window lock the address out for
a while, before any key it sends is hashed."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digital_contrast.store.database import begin_write
from digital_contrast.store.tables import AuthFailure


@dataclass(frozen=True)
class LockoutPolicy:
    failures: int  # within the window, lock the subject out
    window: timedelta
    lockout: timedelta


def locked_for(session: Session, subject: str, now: datetime) -> float | None:
    """Seconds the subject is still locked out, None when it is not."""
    row = session.get(AuthFailure, subject)
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return (row.locked_until - now).total_seconds()


def record_failure(session: Session, subject: str, now: datetime, policy: LockoutPolicy
                   ) -> bool:
    """Count one failure and commit; True when it locked the subject out just now."""
    for _ in range(2):  # a first failure inserted at once by another process: counted again
        begin_write(session)
        row = session.get(AuthFailure, subject, with_for_update=True)
        if row is None:
            row = AuthFailure(subject=subject, failures=0, window_start=now)
            session.add(row)
        if now - row.window_start > policy.window:
            row.failures, row.window_start = 0, now
        row.failures += 1
        locked = row.failures >= policy.failures
        if locked:
            row.failures, row.window_start = 0, now
            row.locked_until = now + policy.lockout
        try:
            session.commit()
            return locked
        except IntegrityError:
            session.rollback()
    return False
