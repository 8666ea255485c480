"""Ingest runs through the Celery executor: a run and one item per source series.

Revision ID: r0005
Revises: r0004
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0005"
down_revision: str | None = "r0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repository_ingest_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("out", sa.String(4096), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("series", sa.Integer(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("not_dicom", sa.Integer(), nullable=False),
        sa.Column("safe_private", sa.JSON(), nullable=False),
        sa.Column("key_check", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repository_ingest_runs"),
    )
    op.create_table(
        "repository_ingest_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(64), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("written", sa.Integer(), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_repository_ingest_items"),
        sa.ForeignKeyConstraint(["run_id"], ["repository_ingest_runs.id"], ondelete="CASCADE"),
    )
    op.create_index("uq_repository_ingest_items_run_id_item_key", "repository_ingest_items",
                    ["run_id", "item_key"], unique=True)
    op.create_index("ix_repository_ingest_items_run_id_state", "repository_ingest_items",
                    ["run_id", "state"])


def downgrade() -> None:
    op.drop_table("repository_ingest_items")
    op.drop_table("repository_ingest_runs")
