"""The audit trail: append-only rows, each hashed together with the hash of the row before.

hash = sha256(prev_hash + canonical JSON of the row's fields), the first row following
`GENESIS`. Editing, inserting or deleting a row in the middle breaks the chain at that point,
and `verify_audit_chain` names the first broken row. The database refuses UPDATE and DELETE of
audit rows (triggers, see the migration); prev_hash is unique, so the chain cannot fork.

Appends are serialised: a transaction-scoped advisory lock on PostgreSQL, the single SQLite
writer (BEGIN IMMEDIATE) on SQLite. The caller commits, usually together with the change it
records.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from digital_contrast.canonical_json import canonical_json
from digital_contrast.store.columns import utcnow
from digital_contrast.store.database import begin_write
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.tables import AuditEvent

GENESIS = "0" * 64
_ADVISORY_LOCK = 0x44435F4155444954  # "DC_AUDIT": one key for the whole chain


def _fields(at: datetime, site: str, actor: str, action: str, object_type: str,
            object_id: str | None, outcome: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"at": at.isoformat(timespec="microseconds"), "site": site, "actor": actor,
            "action": action, "object_type": object_type, "object_id": object_id,
            "outcome": outcome, "detail": detail}


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()


def row_hash(event: AuditEvent) -> str:
    """The hash a row should carry, recomputed from its stored fields."""
    return chain_hash(event.prev_hash, _fields(
        event.at, event.site, event.actor, event.action, event.object_type, event.object_id,
        event.outcome, event.detail))


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    else:
        begin_write(session)


def append_audit(session: Session, site: str, actor: str, action: str, object_type: str,
                 object_id: str | None, outcome: str, detail: dict[str, Any] | None = None, *,
                 at: datetime | None = None) -> AuditEvent:
    """Append one event to the chain. `detail` must be plain JSON and free of patient
    identifiers beyond the object ids the event is about."""
    try:
        # Stored as it will be read back, so the hash recomputes exactly.
        detail = json.loads(canonical_json(detail or {}))
    except (TypeError, ValueError) as exc:
        raise StoreError(StoreErrorCode.AUDIT_INVALID,
                         f"audit detail is not plain JSON: {exc}") from None
    _lock_chain(session)
    prev_hash = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc())
                               .limit(1)) or GENESIS
    at = at or utcnow()
    event = AuditEvent(at=at, site=site, actor=actor, action=action, object_type=object_type,
                       object_id=object_id, outcome=outcome, detail=detail,
                       prev_hash=prev_hash)
    event.hash = row_hash(event)
    session.add(event)
    session.flush()
    return event


REGISTRY_CHANGED = "REGISTRY_CHANGED_OUTSIDE"


def audit_registry_changed(session: Session, site: str, actor: str, use_case: str,
                           detail: str) -> AuditEvent:
    """A registry change made outside our commands, found when a model was loaded."""
    return append_audit(session, site, actor, "registry.changed_outside", "model", use_case,
                        "refused", {"code": REGISTRY_CHANGED, "detail": detail})


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    first_broken_id: int | None  # the first row whose link or content does not check
    checked: int  # rows checked up to and including the first broken one
    head_hash: str  # hash of the last good row: anchor it elsewhere to detect truncation


def verify_audit_chain(session: Session, *, batch_size: int = 1000) -> VerifyResult:
    """Walk the whole chain in id order, recomputing every hash."""
    expected_prev, checked = GENESIS, 0
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id).execution_options(
        yield_per=batch_size, populate_existing=True))
    for event in rows:
        checked += 1
        if event.prev_hash != expected_prev or event.hash != row_hash(event):
            rows.close()
            return VerifyResult(False, event.id, checked, expected_prev)
        expected_prev = event.hash
    return VerifyResult(True, None, checked, expected_prev)


def list_audit(session: Session, site: str, *, since: datetime | None = None,
               limit: int = 1000) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.site == site)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    return list(session.scalars(query.order_by(AuditEvent.id).limit(limit)))
