"""Listing and summary at a million jobs.

The job listing reads index ranges: (site, created_at, id) and (site, state, created_at, id)
give a site's jobs, or those in one state, newest first in the listing's own order, so the
first page and a deep one (keyset cursor) cost the same. The indexes on site alone and on
created_at alone go: the first new index serves every lookup by site, and no query orders
jobs by time across sites but the claim of a queued job, which the index on state serves
(with created_at alone, PostgreSQL could walk a year of other sites' jobs to fill a small
site's page).

Energy bins per calendar month, filled from the daily bins: a range reads its whole months
there and only the days around them from the daily bins (a year of daily bins is a few
hundred thousand rows).

Building the indexes reads the jobs table once and blocks writes to it meanwhile (seconds at
a million jobs on PostgreSQL): upgrade in the maintenance window, as for every migration.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHLY = "emission_energy_bins_monthly"
BIN_KEY = ("site", "use_case", "model_version", "factor_set_id", "factor_set_version", "bin")


def _month_of_day() -> str:
    """SQL for the first day of the month of the `day` column."""
    if op.get_bind().dialect.name == "postgresql":
        return "CAST(date_trunc('month', day) AS DATE)"
    return "date(day, 'start of month')"


def upgrade() -> None:
    op.create_index("ix_jobs_site_created_at_id", "jobs", ["site", "created_at", "id"])
    op.create_index("ix_jobs_site_state_created_at_id", "jobs",
                    ["site", "state", "created_at", "id"])
    for column in ("site", "created_at"):
        op.drop_index(op.f(f"ix_jobs_{column}"), table_name="jobs")
    op.create_table(
        MONTHLY,
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("use_case", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("factor_set_id", sa.String(64), nullable=False),
        sa.Column("factor_set_version", sa.String(32), nullable=False),
        sa.Column("bin", sa.Integer(), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("site", "month", "use_case", "model_version", "factor_set_id",
                                "factor_set_version", "bin", name=op.f(f"pk_{MONTHLY}")),
    )
    columns = ", ".join(BIN_KEY)  # the key but the month
    op.execute(f"INSERT INTO {MONTHLY} (month, {columns}, jobs) "
               f"SELECT {_month_of_day()}, {columns}, SUM(jobs) FROM emission_energy_bins "
               f"GROUP BY {_month_of_day()}, {columns}")


def downgrade() -> None:
    op.drop_table(MONTHLY)
    for column in ("site", "created_at"):
        op.create_index(op.f(f"ix_jobs_{column}"), "jobs", [column])
    op.drop_index("ix_jobs_site_state_created_at_id", table_name="jobs")
    op.drop_index("ix_jobs_site_created_at_id", table_name="jobs")
