"""The export log: every cohort export recorded with its cohort version, purpose and data use
agreement, each record sealed with the previous one's seal (HMAC-SHA-256 under the keys
folder's `repository-exports` secret), so that a record changed, removed or inserted after the
fact breaks the chain that `verify_exports` walks."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digital_contrast.canonical_json import canonical_json
from digital_contrast.repository.index.tables import ExportRecord

SECRET_NAME = "repository-exports"
GENESIS = "0" * 64
_SEALED = ("exported_at", "cohort", "cohort_version", "cohort_sha256", "purpose",
           "data_use_agreement", "use_case", "min_k", "series_exported", "series_suppressed",
           "manifest_sha256", "previous_seal")


def _seal(secret: bytes, record: ExportRecord) -> str:
    fields: dict[str, Any] = {name: getattr(record, name) for name in _SEALED}
    at = fields["exported_at"]
    if at.tzinfo is None:  # SQLite returns naive datetimes: they were written as UTC
        at = at.replace(tzinfo=dt.UTC)
    fields["exported_at"] = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return hmac.new(secret, canonical_json(fields).encode(), hashlib.sha256).hexdigest()


def record_export(session: Session, secret: bytes, **fields: Any) -> ExportRecord:
    """Append a sealed record (`fields`: the record's columns but id, time and seals)."""
    last = session.scalars(select(ExportRecord).order_by(ExportRecord.id.desc()).limit(1)
                           .with_for_update()).first()
    record = ExportRecord(exported_at=dt.datetime.now(dt.UTC),
                          previous_seal=last.seal if last else GENESIS, seal="", **fields)
    record.seal = _seal(secret, record)
    session.add(record)
    session.flush()
    return record


def verify_exports(session: Session, secret: bytes) -> tuple[list[ExportRecord], list[str]]:
    """The records in order and the problems of their chain (none: intact)."""
    records = list(session.scalars(select(ExportRecord).order_by(ExportRecord.id)))
    problems, previous = [], GENESIS
    for record in records:
        if record.previous_seal != previous:
            problems.append(f"export {record.id}: the record before it was removed or changed")
        if not hmac.compare_digest(record.seal, _seal(secret, record)):
            problems.append(f"export {record.id}: changed after it was sealed")
        previous = record.seal
    return records, problems
