"""Cohort members of a pair cohort keep the native series of their study, frozen with them.

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0004"
down_revision: str | None = "r0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repository_cohort_members") as table:
        table.add_column(sa.Column("native_series_uid", sa.String(64), nullable=True))
        table.add_column(sa.Column("native_instance_set_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository_cohort_members") as table:
        table.drop_column("native_instance_set_sha256")
        table.drop_column("native_series_uid")
