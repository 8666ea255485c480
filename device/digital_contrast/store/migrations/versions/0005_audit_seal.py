"""The audit trail is sealed with a key held outside the database: each event gets its position
(seq, unique), the id of the key and an HMAC. Events written before this migration are verified
once, with the unkeyed chain as it was defined then, and sealed by one appended `audit.sealed`
event whose keyed hash covers them all. A chain that does not verify is not sealed: the upgrade
stops before changing anything (AUDIT_CHAIN_BROKEN). And the export cursors: how far the trail
was sent to each audit repository (IHE ATNA over syslog).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from digital_contrast.store.errors import StoreError, StoreErrorCode

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
_EVENTS = sa.table(
    "audit_events", sa.column("id", sa.Integer), sa.column("at", sa.DateTime(timezone=True)),
    sa.column("site", sa.String), sa.column("actor", sa.String), sa.column("action", sa.String),
    sa.column("object_type", sa.String), sa.column("object_id", sa.String),
    sa.column("outcome", sa.String), sa.column("detail", sa.JSON),
    sa.column("prev_hash", sa.String), sa.column("hash", sa.String),
    sa.column("seq", sa.Integer), sa.column("key_id", sa.String), sa.column("mac", sa.String))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _hash(prev_hash: str, at: datetime, row: Any) -> str:
    """The chain's hash as defined by migration 0001's era, frozen here."""
    fields = {"at": at.isoformat(timespec="microseconds"), "site": row.site,
              "actor": row.actor, "action": row.action, "object_type": row.object_type,
              "object_id": row.object_id, "outcome": row.outcome, "detail": row.detail}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _verified_legacy_chain() -> tuple[int, str, str | None]:
    """(events, head hash, site of the newest event) of the unkeyed chain, verified."""
    bind = op.get_bind()
    count, head, site = 0, GENESIS, None
    query = sa.select(_EVENTS.c.id, _EVENTS.c.at, _EVENTS.c.site, _EVENTS.c.actor,
                      _EVENTS.c.action, _EVENTS.c.object_type, _EVENTS.c.object_id,
                      _EVENTS.c.outcome, _EVENTS.c.detail, _EVENTS.c.prev_hash,
                      _EVENTS.c.hash).order_by(_EVENTS.c.id)
    for row in bind.execute(query):
        count += 1
        if row.prev_hash != head or row.hash != _hash(row.prev_hash, _utc(row.at), row):
            raise StoreError(StoreErrorCode.AUDIT_CHAIN_BROKEN,
                             f"audit event {row.id} does not verify ({count} checked): the "
                             "earlier audit trail is not sealed and the database is left as it "
                             "was; keep a copy as evidence and contact the manufacturer")
        head, site = row.hash, row.site
    return count, head, site


def upgrade() -> None:
    count, head, site = _verified_legacy_chain()
    seal = context.config.attributes.get("audit_seal")
    if count and seal is None:
        raise StoreError(StoreErrorCode.AUDIT_KEY_MISSING,
                         f"{count} audit events must be sealed by this upgrade, which needs the "
                         "audit key: upgrade through the service (`digital-contrast serve` or "
                         "any command that opens the store), not bare alembic")
    op.add_column("audit_events", sa.Column("seq", sa.Integer(), nullable=True))
    op.add_column("audit_events", sa.Column("key_id", sa.String(16), nullable=True))
    op.add_column("audit_events", sa.Column("mac", sa.String(64), nullable=True))
    op.create_index("uq_audit_events_seq", "audit_events", ["seq"], unique=True)
    op.create_table(
        "audit_exports",
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_audit_exports")),
    )
    if not count:
        return
    at = datetime.now(UTC)
    row = _SealRow(site=site or "", detail={"legacy_events": count, "legacy_head": head})
    row_hash = _hash(head, at, row)
    seq = count + 1
    stored_at = at.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else at
    op.get_bind().execute(_EVENTS.insert().values(
        at=stored_at, site=row.site, actor=row.actor, action=row.action,
        object_type=row.object_type, object_id=None, outcome=row.outcome, detail=row.detail,
        prev_hash=head, hash=row_hash, seq=seq, key_id=seal.key_id,
        mac=seal.row_mac(seq, row_hash)))
    # Anchored by store.database once the upgrade has committed.
    context.config.attributes["audit_anchor"] = (seq, row_hash)


class _SealRow:
    actor, action, object_type, object_id, outcome = (
        "migration 0005", "audit.sealed", "audit", None, "success")

    def __init__(self, site: str, detail: dict[str, Any]) -> None:
        self.site, self.detail = site, detail


def downgrade() -> None:
    # The seal event stays: audit rows are append-only, and it still chains correctly.
    op.drop_table("audit_exports")
    # Plain ALTER TABLE, not a batch copy: on SQLite a copy would drop the append-only triggers.
    op.drop_index("uq_audit_events_seq", table_name="audit_events")
    for column in ("mac", "key_id", "seq"):
        op.execute(f"ALTER TABLE audit_events DROP COLUMN {column}")
