"""Alembic environment: runs on the connection handed over by `store.database`, or on the URL
of `sqlalchemy.url` / DC_DATABASE_URL when run from the `alembic` command line."""

from alembic import context
from sqlalchemy import Connection

from digital_contrast.store.tables import Base

config = context.config
# Models are only the target of `alembic revision --autogenerate`; migrations never import them.
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from digital_contrast.config import get_settings
    from digital_contrast.store.database import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url")
                         or get_settings().database_url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")
_main()
