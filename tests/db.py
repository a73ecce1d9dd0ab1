"""Fresh databases for the storage and API tests: a SQLite file, and a new schema on the local PostgreSQL.

A pytest plugin (``pytest_plugins`` in tests/conftest.py): every test directory gets the fixtures
``fresh_databases``, ``db_url``/``empty_db_url`` (one per backend) and ``db``/``empty_db`` (migrated).

PostgreSQL (127.0.0.1:5432, trust auth, database ``test``; override with TRIAGE_TEST_PG_DSN) is required:
if it cannot be reached the PostgreSQL-parametrised tests FAIL with the reason, they are never skipped.
``--backends sqlite`` (``make test-fast``) deselects them instead: they are not run and not reported
as skipped, and PostgreSQL is never contacted. Every schema made here is dropped at the end of the session.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from triage.store.db import Database, init_db
from triage.store.tables import Submission

BACKEND_NAMES = ("sqlite", "postgresql")
# Use as ``params=BACKENDS`` on any fixture that opens a database: the ``backend`` mark on each
# parameter is what ``--backends`` selects on.
BACKENDS = [pytest.param(name, marks=pytest.mark.backend(name), id=name) for name in BACKEND_NAMES]
PG_DSN = os.environ.get("TRIAGE_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=5")


def _pg_parts() -> dict[str, str]:
    return dict(item.split("=", 1) for item in PG_DSN.split())


class FreshDatabases:
    """Hands out empty databases and cleans up the PostgreSQL schemas afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.schemas: list[str] = []
        self._n = 0

    def _admin(self):  # type: ignore[no-untyped-def]
        import psycopg

        try:
            return psycopg.connect(PG_DSN, autocommit=True)
        except psycopg.OperationalError as exc:
            pytest.fail(
                f"PostgreSQL is not reachable with {PG_DSN!r}: {exc}. The storage and API tests must pass on "
                "PostgreSQL too: start it (127.0.0.1:5432, trust auth, database 'test') or set TRIAGE_TEST_PG_DSN.",
                pytrace=False,
            )

    def new(self, backend: str) -> str:
        self._n += 1
        if backend == "sqlite":
            return f"sqlite:///{self.root / f'triage-{self._n}.db'}"
        schema = f"triage_test_{os.getpid()}_{secrets.token_hex(4)}"
        with self._admin() as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        p = _pg_parts()
        where = f"{p.get('user', 'postgres')}@{p.get('host', '127.0.0.1')}:{p.get('port', '5432')}/{p['dbname']}"
        return f"postgresql+psycopg://{where}?options=-csearch_path%3D{schema}"

    def close(self) -> None:
        if not self.schemas:
            return
        with self._admin() as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=",".join(BACKEND_NAMES),
        help=f"comma-separated database backends to test on (default: %(default)s); the tests of any other "
        f"backend are deselected. Known: {', '.join(BACKEND_NAMES)}",
    )


def pytest_configure(config: pytest.Config) -> None:
    chosen = selected_backends(config)
    unknown = sorted(chosen - set(BACKEND_NAMES))
    if unknown or not chosen:
        raise pytest.UsageError(f"--backends: unknown {unknown or 'empty list'}; known: {', '.join(BACKEND_NAMES)}")


def selected_backends(config: pytest.Config) -> set[str]:
    return {b.strip() for b in str(config.getoption("--backends")).split(",") if b.strip()}


def pytest_report_header(config: pytest.Config) -> str:
    return f"database backends: {', '.join(sorted(selected_backends(config)))}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = selected_backends(config)
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        names = {str(mark.args[0]) for mark in item.iter_markers("backend")}
        (dropped if names - chosen else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def fresh_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshDatabases]:
    made = FreshDatabases(tmp_path_factory.mktemp("db"))
    yield made
    made.close()


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, fresh_databases: FreshDatabases) -> str:
    """An empty database per test module and backend (tests in a module share it: use distinct names)."""
    return fresh_databases.new(str(request.param))


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, fresh_databases: FreshDatabases) -> str:
    """An empty database for one test (for tests that damage it on purpose, e.g. audit tampering)."""
    return fresh_databases.new(str(request.param))


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    """A migrated database shared by one test module (use distinct names and ids per test)."""
    database = Database(db_url)
    init_db(database)
    yield database
    database.dispose()


@pytest.fixture
def empty_db(empty_db_url: str) -> Iterator[Database]:
    """A migrated database for one test alone (for tests that damage it on purpose)."""
    database = Database(empty_db_url)
    init_db(database)
    yield database
    database.dispose()


def minimal_submission(case_id: int, tracking_code: str, **fields: Any) -> Submission:
    """A valid Submission row with placeholder texts and dates, for storage tests that need just a row."""
    row: dict[str, Any] = {
        "tracking_code": tracking_code,
        "request_hash": "h",
        "case_id": case_id,
        "kind": "phan_anh",
        "submitter_type": "citizen",
        "title_raw": "t",
        "content_raw": "c",
        "title": "t",
        "content": "c",
        "search_text": "t c",
        "forward_due": date(2026, 3, 9),
        "answer_due": date(2026, 3, 23),
    }
    return Submission(**{**row, **fields})
