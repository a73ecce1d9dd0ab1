"""Production-safe defaults: the token key is never weak nor per worker; liveness and readiness probes.

Production refuses to start without a strong key; dev mode with no key makes one once in the data folder
(0600) that every worker and every restart share; readiness names the part that is not ready.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from service.app import create_app
from service.signing_key import SECRET_FILE, UnsafeConfiguration, token_secret
from triage.cases.accounts import create_user
from triage.config import Settings

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "mật-khẩu-đủ-dài-123"


# ---- the token key ----------------------------------------------------------------------------------


def test_production_refuses_to_start_without_a_strong_key(tmp_path: Path) -> None:
    with pytest.raises(UnsafeConfiguration, match="production mode needs TRIAGE_JWT_SECRET"):
        create_app(Settings(env="production", data_dir=tmp_path))
    with pytest.raises(UnsafeConfiguration, match="at least 32 bytes"):
        create_app(Settings(env="production", jwt_secret=SecretStr("k" * 31), data_dir=tmp_path))
    assert not (tmp_path / SECRET_FILE).exists()  # production never falls back to a generated key
    assert create_app(Settings(env="production", jwt_secret=SecretStr("k" * 32), data_dir=tmp_path))


def test_a_weak_key_is_refused_in_dev_mode_too(tmp_path: Path) -> None:
    """A deployment that forgot TRIAGE_ENV=production must not run on a guessable key either."""
    with pytest.raises(UnsafeConfiguration, match="at least 32 bytes"):
        token_secret(Settings(jwt_secret=SecretStr("secret"), data_dir=tmp_path))


def test_serve_in_production_without_a_key_exits_with_the_reason(tmp_path: Path) -> None:
    env = {**os.environ, "TRIAGE_ENV": "production", "TRIAGE_DATA_DIR": str(tmp_path), "TRIAGE_JWT_SECRET": ""}
    env.pop("TRIAGE_JWT_SECRET")
    r = subprocess.run(
        [sys.executable, "-m", "triage.cli", "serve", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert "TRIAGE_JWT_SECRET" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_dev_key_is_made_once_in_the_data_folder_with_mode_0600(tmp_path: Path) -> None:
    first = token_secret(Settings(data_dir=tmp_path))
    key_file = tmp_path / SECRET_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.encode()) >= 32
    assert token_secret(Settings(data_dir=tmp_path)) == first  # a restart signs with the same key
    key_file.chmod(0o644)  # loosened by hand: tightened again on the next start
    assert token_secret(Settings(data_dir=tmp_path)) == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def _key_of(data_dir: str) -> str:
    return token_secret(Settings(data_dir=Path(data_dir)))


def test_workers_starting_together_share_one_key(tmp_path: Path) -> None:
    """Eight processes racing on an empty data folder all end up with the same key."""
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        keys = pool.map(_key_of, [str(tmp_path)] * 8)
    assert len(set(keys)) == 1
    assert keys[0] == (tmp_path / SECRET_FILE).read_text().strip()
    assert not [p for p in tmp_path.iterdir() if p.name != SECRET_FILE]  # no candidate files left behind


def test_a_session_survives_a_restart_in_dev_mode(tmp_path: Path, encoder_path: Path) -> None:
    """A token issued before a restart (no key configured) is still accepted after it."""
    settings = Settings(data_dir=tmp_path, encoder_path=encoder_path, escalate_interval_s=0, model_poll_s=0)
    with TestClient(create_app(settings)) as client:
        with client.app.state.svc.db.session() as s:  # type: ignore[attr-defined]
            create_user(s, username="lan", password=PASSWORD, role="admin")
        r = client.post("/api/v1/auth/token", data={"username": "lan", "password": PASSWORD})
        token = r.json()["access_token"]
    with TestClient(create_app(settings)) as client:
        r = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text


# ---- liveness and readiness -------------------------------------------------------------------------


@pytest.fixture
def app_client(tmp_path: Path, encoder_path: Path, empty_db_url: str) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path, database_url=empty_db_url, encoder_path=encoder_path, escalate_interval_s=0, model_poll_s=0
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_ready_names_the_database_when_it_cannot_answer(app_client: TestClient) -> None:
    live, ready = app_client.get("/health/live"), app_client.get("/health/ready")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "models": "ok", "index": "ok"}
    db = app_client.app.state.svc.db  # type: ignore[attr-defined]
    with db.session() as s:  # the schema goes away under the running service
        s.execute(text("ALTER TABLE alembic_version RENAME TO alembic_version_away"))
    try:
        for path in ("/health/ready", "/health"):
            r = app_client.get(path)
            assert r.status_code == 503, r.text
            assert r.json()["failing"] == ["database"]
            assert "database" in r.json()["detail"]
        assert app_client.get("/health/live").status_code == 200  # the process itself is fine
    finally:
        with db.session() as s:
            s.execute(text("ALTER TABLE alembic_version_away RENAME TO alembic_version"))
    assert app_client.get("/health/ready").status_code == 200
