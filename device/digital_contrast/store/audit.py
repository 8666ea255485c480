"""The audit trail: append-only rows, each hashed together with the hash of the row before,
and sealed with a key held outside the database (store.audit_seal).

hash = sha256(prev_hash + canonical JSON of the row's fields), the first row following
`GENESIS`; mac = HMAC(key, seq and hash). Editing, inserting or deleting a row breaks the chain
or its seal at that point, a recomputed chain or a forged append fails the seal, and removing
the newest rows falls short of the anchored head: `verify_audit_chain` names the first broken
row and why. The database refuses UPDATE and DELETE of audit rows (triggers, see the
migration); prev_hash and seq are unique, so the chain cannot fork.

Appends are serialised: a transaction-scoped advisory lock on PostgreSQL, the single SQLite
writer (BEGIN IMMEDIATE) on SQLite. The caller commits, usually together with the change it
records.
"""

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from digital_contrast.canonical_json import canonical_json
from digital_contrast.store.audit_seal import SEAL_INFO, AuditSeal
from digital_contrast.store.columns import utcnow
from digital_contrast.store.database import begin_write
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.tables import AuditEvent

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_ADVISORY_LOCK = 0x44435F4155444954  # "DC_AUDIT": one key for the whole chain
_PENDING = "audit_pending_anchor"


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
    seal = session_seal(session)
    _lock_chain(session)
    head = session.execute(select(AuditEvent.hash, AuditEvent.seq)
                           .order_by(AuditEvent.id.desc()).limit(1)).first()
    if head is not None and head.seq is None:
        raise StoreError(StoreErrorCode.AUDIT_UNSEALED,
                         "the audit trail's newest event is not sealed: the database was not "
                         "upgraded with the audit key present")
    seq = head.seq + 1 if head is not None else 1
    audit_event = AuditEvent(at=at or utcnow(), site=site, actor=actor, action=action,
                             object_type=object_type, object_id=object_id, outcome=outcome,
                             detail=detail, prev_hash=head.hash if head else GENESIS, seq=seq,
                             key_id=seal.key_id)
    audit_event.hash = row_hash(audit_event)
    audit_event.mac = seal.row_mac(seq, audit_event.hash)
    session.add(audit_event)
    session.flush()
    session.info[_PENDING] = (seq, audit_event.hash)
    return audit_event


def session_seal(session: Session) -> AuditSeal:
    seal = session.info.get(SEAL_INFO)
    if seal is None:
        raise StoreError(StoreErrorCode.AUDIT_KEY_MISSING,
                         "no audit key: sessions that write the audit trail come from "
                         "session_factory(engine, audit_seal)")
    return seal


@event.listens_for(Session, "after_commit")
def _anchor_committed_head(session: Session) -> None:
    """The head goes to the anchor only once its rows are committed; a failure here cannot
    undo the commit, so it is logged (verification then reports the anchor behind)."""
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    try:
        session_seal(session).write_anchor(*pending)
    except OSError as exc:
        log.error("AUDIT_ANCHOR_FAILED: the audit head %s could not be anchored (%s)",
                  pending[0], type(exc).__name__)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_head(session: Session) -> None:
    session.info.pop(_PENDING, None)


REGISTRY_CHANGED = "REGISTRY_CHANGED_OUTSIDE"


def audit_registry_changed(session: Session, site: str, actor: str, use_case: str,
                           detail: str) -> AuditEvent:
    """A registry change made outside our commands, found when a model was loaded."""
    return append_audit(session, site, actor, "registry.changed_outside", "model", use_case,
                        "refused", {"code": REGISTRY_CHANGED, "detail": detail})


class BreakReason(StrEnum):
    LINK = "LINK"  # prev_hash is not the hash of the row before: a row removed or inserted
    CONTENT = "CONTENT"  # the fields no longer hash to the stored hash: a row edited
    SEAL = "SEAL"  # the MAC does not check: a recomputed chain or a forged row
    KEY_UNKNOWN = "KEY_UNKNOWN"  # sealed with a key this site does not hold
    SEQUENCE = "SEQUENCE"  # seq is not the row's position in the chain
    UNSEALED = "UNSEALED"  # an unsealed row after the seal, or legacy rows never sealed
    TRUNCATED = "TRUNCATED"  # the chain ends before the anchored head
    ANCHOR_MISMATCH = "ANCHOR_MISMATCH"  # the row at the anchored seq has another hash
    ANCHOR_INVALID = "ANCHOR_INVALID"  # an anchor line that is not a keyed anchor
    ANCHOR_MISSING = "ANCHOR_MISSING"  # sealed rows but no anchor file


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    first_broken_id: int | None  # the first row whose link, content or seal does not check
    checked: int  # rows checked up to and including the first broken one
    head_hash: str  # hash of the last good row
    reason: BreakReason | None = None
    anchored_seq: int | None = None  # the highest head found in the anchor file


def verify_audit_chain(session: Session, *, batch_size: int = 1000) -> VerifyResult:
    """Walk the whole chain in id order, recomputing every hash and seal, then hold the end
    of the chain against the anchor file."""
    seal = session_seal(session)
    anchor = seal.read_anchor()
    anchored = anchor.highest.seq if anchor.highest else None

    def broken(event_id: int | None, reason: BreakReason) -> VerifyResult:
        return VerifyResult(False, event_id, checked, expected_prev, reason, anchored)

    expected_prev, checked, sealed = GENESIS, 0, 0
    if anchor.invalid_line is not None:
        return broken(None, BreakReason.ANCHOR_INVALID)
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id).execution_options(
        yield_per=batch_size, populate_existing=True))
    for row in rows:
        checked += 1
        reason = _row_break(row, expected_prev, checked, sealed, seal)
        if reason is None and anchor.highest and row.seq == anchor.highest.seq \
                and row.hash != anchor.highest.hash:
            reason = BreakReason.ANCHOR_MISMATCH
        if reason is not None:
            rows.close()
            return broken(row.id, reason)
        sealed += row.mac is not None
        expected_prev = row.hash
    if checked and not sealed:
        return broken(None, BreakReason.UNSEALED)
    if anchored is not None and checked < anchored:
        return broken(None, BreakReason.TRUNCATED)
    if sealed and anchor.highest is None:
        return broken(None, BreakReason.ANCHOR_MISSING)
    return VerifyResult(True, None, checked, expected_prev, None, anchored)


def _row_break(row: AuditEvent, expected_prev: str, position: int, sealed_before: int,
               seal: AuditSeal) -> BreakReason | None:
    if row.prev_hash != expected_prev:
        return BreakReason.LINK
    if row.hash != row_hash(row):
        return BreakReason.CONTENT
    if row.mac is None:  # a legacy row: only before the seal
        return BreakReason.UNSEALED if sealed_before else None
    if row.key_id is None or not seal.knows(row.key_id):
        return BreakReason.KEY_UNKNOWN
    if row.seq is None or not hmac.compare_digest(row.mac,
                                                  seal.row_mac(row.seq, row.hash, row.key_id)):
        return BreakReason.SEAL
    if row.seq != position:
        return BreakReason.SEQUENCE
    return None


def list_audit(session: Session, site: str, *, since: datetime | None = None,
               limit: int = 1000) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.site == site)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    return list(session.scalars(query.order_by(AuditEvent.id).limit(limit)))
