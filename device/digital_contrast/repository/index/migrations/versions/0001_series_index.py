"""The series index: one row per de-identified series (repository_series: the clinical store
has a `series` table of its own, and the two may share a PostgreSQL database).

Revision ID: r0001
Revises:
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repository_series",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("region_source", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("phase_source", sa.String(16), nullable=False),
        sa.Column("kvp", sa.Double(), nullable=True),
        sa.Column("thickness_mm", sa.Double(), nullable=True),
        sa.Column("kernel", sa.String(64), nullable=True),
        sa.Column("manufacturer", sa.String(64), nullable=True),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("age_band", sa.String(8), nullable=True),
        sa.Column("sex", sa.String(1), nullable=True),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("quality", sa.String(16), nullable=False),
        sa.Column("instance_set_sha256", sa.String(64), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("generated", sa.String(256), nullable=False, server_default=""),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repository_series"),
    )
    for name, columns, unique in (
            ("uq_repository_series_site_series_uid", ["site", "series_uid"], True),
            ("ix_repository_series_cohort", ["region", "phase", "kvp", "thickness_mm"], False),
            ("ix_repository_series_study_phase", ["study_uid", "phase"], False),
            ("ix_repository_series_age_band_sex", ["age_band", "sex"], False),
            ("ix_repository_series_kernel", ["kernel"], False)):
        op.create_index(name, "repository_series", columns, unique=unique)


def downgrade() -> None:
    op.drop_table("repository_series")
