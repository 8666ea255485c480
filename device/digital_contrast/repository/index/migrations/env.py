"""Alembic environment of the repository index: runs on the connection handed over by
`repository.index.database`; its version table is its own, so the index may share a
PostgreSQL database with the clinical store without either seeing the other's history."""

from alembic import context

from digital_contrast.repository.index.tables import Base

VERSION_TABLE = "repository_alembic_version"

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
