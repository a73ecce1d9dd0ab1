"""Database fixtures for the core's storage tests: each runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.db import db_url, empty_db_url, fresh_databases  # noqa: F401  (fixtures)
from triage.store.db import Database, init_db


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:  # noqa: F811
    """A migrated database shared by one test module (use distinct names and ids per test)."""
    database = Database(db_url)
    init_db(database)
    yield database
    database.dispose()


@pytest.fixture
def empty_db(empty_db_url: str) -> Iterator[Database]:  # noqa: F811
    """A migrated database for one test alone (for tests that damage it on purpose)."""
    database = Database(empty_db_url)
    init_db(database)
    yield database
    database.dispose()
