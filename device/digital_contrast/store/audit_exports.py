"""How far the audit trail was sent to each audit repository: one cursor per target, moved
forward only from the position it was read at (two exporters never move it backwards)."""

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digital_contrast.store.columns import utcnow
from digital_contrast.store.tables import AuditEvent, AuditExport


def exported_up_to(session: Session, target: str) -> int:
    """The id of the last event sent to `target` (0: none yet)."""
    return session.scalar(select(AuditExport.last_event_id)
                          .where(AuditExport.target == target)) or 0


def events_after(session: Session, event_id: int, limit: int) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.id > event_id)
                                .order_by(AuditEvent.id).limit(limit)))


def advance_export(session: Session, target: str, read_at: int, sent_up_to: int) -> bool:
    """Move the cursor from `read_at` to `sent_up_to` and commit; False when another exporter
    moved it meanwhile (the events it sent again are duplicates the repository can drop by
    their sequence number)."""
    if read_at == 0 and session.get(AuditExport, target) is None:
        session.add(AuditExport(target=target, last_event_id=sent_up_to, updated_at=utcnow()))
        try:
            session.commit()
            return True
        except IntegrityError:
            session.rollback()
            return False
    moved = session.execute(update(AuditExport).where(
        AuditExport.target == target, AuditExport.last_event_id == read_at).values(
        last_event_id=sent_up_to, updated_at=utcnow())).rowcount
    session.commit()
    return moved == 1
