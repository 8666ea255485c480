"""API keys of the researcher role: the CHECK of api_keys.role admits 'researcher' (the CT
repository's search and cohorts over the API, never the clinical store).

PostgreSQL changes the constraint in place. SQLite cannot alter a CHECK, and a batch copy
(create a copy, drop the table, rename the copy) fails wherever a job names the key that
submitted it: the migration runs in one transaction with foreign keys on, and dropping the
parent table orphans its children. So the rows are held in a temporary table, the table is
made again from its own stored definition with only the CHECK changed, and the rows go back
under deferred foreign keys: the children find their parents again before the commit, which
SQLite checks.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from digital_contrast.store.errors import StoreError, StoreErrorCode

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "api_keys"
CONSTRAINT = "ck_api_keys_role"
ROLES_BEFORE = ("clinician", "regulatory", "sustainability", "admin")  # as migration 0001
ROLES_AFTER = (*ROLES_BEFORE, "researcher")


def _condition(roles: Sequence[str]) -> str:
    return "role IN ({})".format(", ".join(f"'{r}'" for r in roles))


def _sqlite_recheck(old: str, new: str) -> None:
    """Make api_keys again from its stored definition with CHECK (`old`) replaced by `new`,
    its rows, indexes and triggers kept."""
    bind = op.get_bind()
    table_sql = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' "
                                     "AND name = :name"), {"name": TABLE}).scalar_one()
    if table_sql.count(f"CHECK ({old})") != 1:  # not the schema the earlier migrations made
        raise RuntimeError(f"{TABLE}: its role CHECK is not the expected ({old})")
    others = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE tbl_name = :name AND "
                                  "type IN ('index', 'trigger') AND sql IS NOT NULL"),
                          {"name": TABLE}).scalars().all()
    op.execute("PRAGMA defer_foreign_keys = ON")  # until the commit, which checks every key
    op.execute(f"CREATE TEMP TABLE held_{TABLE} AS SELECT * FROM {TABLE}")
    op.execute(f"DROP TABLE {TABLE}")
    op.execute(table_sql.replace(f"CHECK ({old})", f"CHECK ({new})"))
    op.execute(f"INSERT INTO {TABLE} SELECT * FROM temp.held_{TABLE}")
    op.execute(f"DROP TABLE temp.held_{TABLE}")
    for statement in others:
        op.execute(statement)


def _recheck(old: Sequence[str], new: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_recheck(_condition(old), _condition(new))
        return
    op.drop_constraint(op.f(CONSTRAINT), TABLE, type_="check")
    op.create_check_constraint(op.f(CONSTRAINT), TABLE, _condition(new))


def upgrade() -> None:
    _recheck(ROLES_BEFORE, ROLES_AFTER)


def downgrade() -> None:
    # Refused rather than deleting them: a key's row names the actor of its audit events
    # ("key:<id>"), so removing keys is the operator's decision, never a schema step's.
    researchers = op.get_bind().execute(sa.text(
        f"SELECT COUNT(*) FROM {TABLE} WHERE role = 'researcher'")).scalar_one()
    if researchers:
        raise StoreError(StoreErrorCode.API_KEY_INVALID,
                         f"{researchers} API keys have the researcher role, which the schema "
                         "before migration 0009 does not admit (revoked keys count too): the "
                         "database is left as it was; delete those keys by hand if they must "
                         "go, then downgrade")
    _recheck(ROLES_AFTER, ROLES_BEFORE)
