"""Result destinations (DIMSE peers and STOW-RS services per site) and the durable outbox of
deliveries (one per job and destination: state, attempts, next attempt, lease, last error).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROTOCOLS = ("dimse", "stow-rs")  # as the model's CHECK
DELIVERY_STATES = ("pending", "sending", "delivered", "failed")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _one_of(column: str, values: tuple[str, ...], table: str) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    op.create_table(
        "destinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("ae_title", sa.String(16), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("transfer_syntaxes", sa.JSON(), nullable=False),
        sa.Column("tls", sa.Boolean(), nullable=False),
        sa.Column("has_credential", sa.Boolean(), nullable=False),
        sa.Column("auto", sa.Boolean(), nullable=False),
        _when("created_at"), _when("disabled_at", True),
        _one_of("protocol", PROTOCOLS, "destinations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destinations")),
        sa.UniqueConstraint("site", "name", name=op.f("uq_destinations_site_name")),
    )
    op.create_index(op.f("ix_destinations_site"), "destinations", ["site"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.Column("series_uids", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at"),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        _when("lease_expires_at", True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("instances_sent", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        _when("created_at"), _when("delivered_at", True),
        _one_of("state", DELIVERY_STATES, "deliveries"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"],
                                name=op.f("fk_deliveries_job_id_jobs")),
        sa.ForeignKeyConstraint(["destination_id"], ["destinations.id"],
                                name=op.f("fk_deliveries_destination_id_destinations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index(op.f("ix_deliveries_site"), "deliveries", ["site"])
    op.create_index(op.f("ix_deliveries_job_id"), "deliveries", ["job_id"])
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_job_id"), table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_site"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index(op.f("ix_destinations_site"), table_name="destinations")
    op.drop_table("destinations")
