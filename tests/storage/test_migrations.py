"""The migrations build exactly the tables storage/models.py declares, on SQLite and on PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers every table on SQLModel.metadata)
from storage import open_store


def test_the_migrated_schema_matches_the_models(fresh_db_url):
    """Migrated from an empty database (the other tests get a copy of one migrated database: tests/conftest.py)."""
    store = open_store(fresh_db_url)
    try:
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    finally:
        store.close()
