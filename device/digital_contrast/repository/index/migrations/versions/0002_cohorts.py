"""Saved cohorts: versioned searches with their members frozen at each version.

Revision ID: r0002
Revises: r0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repository_cohorts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("series_count", sa.Integer(), nullable=False),
        sa.Column("cohort_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repository_cohorts"),
    )
    op.create_index("uq_repository_cohorts_name_version", "repository_cohorts",
                    ["name", "version"], unique=True)
    op.create_table(
        "repository_cohort_members",
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("instance_set_sha256", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["cohort_id"], ["repository_cohorts.id"], ondelete="CASCADE",
                                name="fk_repository_cohort_members_cohort_id"),
        sa.PrimaryKeyConstraint("cohort_id", "site", "series_uid",
                                name="pk_repository_cohort_members"),
    )


def downgrade() -> None:
    op.drop_table("repository_cohort_members")
    op.drop_table("repository_cohorts")
