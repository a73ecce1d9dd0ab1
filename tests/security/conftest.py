"""Fixtures shared by the security tests: a migrated database and a running app, on each backend."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.state import ServiceState
from tests.db import BACKENDS, FreshDatabases
from triage.cases.accounts import create_user
from triage.config import Settings
from triage.store.db import Database, init_db

PASSWORD = "mật-khẩu-đủ-dài-123"
_names = itertools.count(1)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, fresh_databases: FreshDatabases) -> Iterator[Database]:
    """A fresh migrated database."""
    d = Database(fresh_databases.new(request.param))
    init_db(d)
    yield d
    d.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def app(
    request: pytest.FixtureRequest,
    encoder_path: Path,
    fresh_databases: FreshDatabases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """The service on a fresh database with an empty model registry of its own, one per test module."""
    settings = Settings(
        encoder_path=encoder_path,
        database_url=fresh_databases.new(str(request.param)),
        data_dir=tmp_path_factory.mktemp("security"),
        model_poll_s=0,
        escalate_interval_s=0,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def svc_of(app: TestClient) -> ServiceState:
    svc: ServiceState = app.app.state.svc  # type: ignore[attr-defined]
    return svc


def unique(prefix: str) -> str:
    """A name no other test has used in this session."""
    return f"{prefix}{next(_names)}"


def account(app: TestClient, role: str, agency: str | None = None) -> str:
    """A fresh account's user name."""
    name = unique(f"{role}-")
    with svc_of(app).db.session() as s:
        create_user(s, username=name, password=PASSWORD, role=role, agency_code=agency)
    return name


def bearer(app: TestClient, role: str, agency: str | None = None) -> dict[str, str]:
    """Authorization headers for a fresh account."""
    r = app.post("/api/v1/auth/token", data={"username": account(app, role, agency), "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
