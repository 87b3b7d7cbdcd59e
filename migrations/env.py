"""Alembic environment: migrate one schema over a given connection (from
:mod:`migrations.runner`) or over the configured database (the alembic command)."""

from alembic import context
from sqlalchemy import Connection

from drg.tables import metadata
from migrations.runner import VERSION_TABLE, _ensure_schema


def _run(connection: Connection, schema: str | None) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection, config.attributes.get("schema"))
        return
    # The alembic command: the database and schema come from claimcoder's settings.
    from worker.resources import sync_engine
    from worker.settings import Settings

    database = Settings().database
    engine = sync_engine(database)
    try:
        with engine.begin() as connection:
            _ensure_schema(connection, database.schema_name)
            _run(connection, database.schema_name)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
