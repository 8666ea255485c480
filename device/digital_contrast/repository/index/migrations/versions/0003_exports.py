"""The export log: one sealed record per cohort export.

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0003"
down_revision: str | None = "r0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repository_exports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cohort", sa.String(64), nullable=False),
        sa.Column("cohort_version", sa.Integer(), nullable=False),
        sa.Column("cohort_sha256", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(256), nullable=False),
        sa.Column("data_use_agreement", sa.String(128), nullable=False),
        sa.Column("use_case", sa.String(64), nullable=False),
        sa.Column("min_k", sa.Integer(), nullable=False),
        sa.Column("series_exported", sa.Integer(), nullable=False),
        sa.Column("series_suppressed", sa.Integer(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("previous_seal", sa.String(64), nullable=False),
        sa.Column("seal", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repository_exports"),
    )


def downgrade() -> None:
    op.drop_table("repository_exports")
