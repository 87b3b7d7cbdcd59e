"""Run the migrations from code, into the configured schema.

The connection's search_path already names the schema (``worker.resources`` sets it), so the
unqualified tables land there; Alembic's own version table is put in the same schema, so two
schemas on one database (tests use one per test) migrate independently.
"""

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

SCRIPT_LOCATION: Final = str(Path(__file__).resolve().parent)
VERSION_TABLE: Final = "alembic_version"


def alembic_config(connection: Connection, schema: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def _ensure_schema(connection: Connection, schema: str | None) -> None:
    if schema:
        quoted = connection.dialect.identifier_preparer.quote_schema(schema)
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))


def upgrade(engine: Engine, schema: str | None, revision: str = "head") -> None:
    with engine.begin() as connection:
        _ensure_schema(connection, schema)
        command.upgrade(alembic_config(connection, schema), revision)


def downgrade(engine: Engine, schema: str | None, revision: str = "base") -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection, schema), revision)


def current_revision(engine: Engine, schema: str | None) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table_schema": schema, "version_table": VERSION_TABLE}
        )
        return context.get_current_revision()


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return ScriptDirectory.from_config(config).get_current_head()
