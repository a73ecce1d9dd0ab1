"""Production refuses unsafe settings; dev mode may bootstrap an admin; the core never imports the web stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.app import UnsafeConfiguration, _bootstrap_admin, create_app, status_of, token_secret
from triage.cases.accounts import authenticate
from triage.config import Settings
from triage.errors import IdempotencyKeyReused, InvalidTransition, NotFound, PermissionDenied, TriageError
from triage.store.db import Database, init_db


def test_production_needs_a_strong_secret(tmp_path: Path) -> None:
    with pytest.raises(UnsafeConfiguration, match="TRIAGE_JWT_SECRET"):
        create_app(Settings(env="production", data_dir=tmp_path))
    with pytest.raises(UnsafeConfiguration, match="at least 32"):
        create_app(Settings(env="production", jwt_secret=SecretStr("short"), data_dir=tmp_path))
    assert create_app(Settings(env="production", jwt_secret=SecretStr("k" * 40), data_dir=tmp_path))


def test_production_never_creates_a_default_account(tmp_path: Path) -> None:
    with pytest.raises(UnsafeConfiguration, match="dev mode only"):
        create_app(
            Settings(
                env="production",
                jwt_secret=SecretStr("k" * 40),
                dev_admin_password=SecretStr("admin-password"),
                data_dir=tmp_path,
            )
        )


def test_dev_secret_is_kept_in_the_data_folder(tmp_path: Path) -> None:
    """More in tests/security/test_defaults.py: the key is made once and shared, never weak."""
    assert token_secret(Settings(data_dir=tmp_path)) == token_secret(Settings(data_dir=tmp_path))
    assert token_secret(Settings(jwt_secret=SecretStr("k" * 40))) == "k" * 40


def test_dev_admin_bootstrap(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'dev.db'}")
    init_db(db)
    _bootstrap_admin(Settings(), db)  # no password configured: nothing
    with db.read() as s, pytest.raises(TriageError):
        authenticate(s, "admin", "dev-password-1")
    _bootstrap_admin(Settings(dev_admin_password=SecretStr("dev-password-1")), db)
    _bootstrap_admin(Settings(dev_admin_password=SecretStr("dev-password-1")), db)  # only when no account exists
    with db.read() as s:
        assert authenticate(s, "admin", "dev-password-1").role.value == "admin"
    db.dispose()


def test_error_statuses_follow_the_most_specific_class() -> None:
    assert status_of(IdempotencyKeyReused("x")) == 422
    assert status_of(InvalidTransition("x")) == 409
    assert status_of(NotFound("x")) == 404
    assert status_of(PermissionDenied("x")) == 403
    assert status_of(TriageError("x")) == 400


def test_core_never_imports_the_web_stack() -> None:
    code = (
        "import sys, pkgutil, importlib, triage\n"
        "for m in pkgutil.walk_packages(triage.__path__, 'triage.'):\n"
        "    if 'migrations' not in m.name: importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in {'fastapi', 'starlette', 'mlflow'})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_service_keeps_threads_near_the_core_count(tmp_path: Path) -> None:
    """One BLAS thread and a small request pool at start-up (oversubscription slowed the intake)."""
    import anyio.to_thread
    from fastapi.testclient import TestClient
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=None):  # restore the library default for the rest of the session
        app = create_app(Settings(data_dir=tmp_path, escalate_interval_s=0, request_threads=5))
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            # faiss ships an OpenMP build of OpenBLAS whose thread count is per-thread OpenMP state (the
            # limit set in the lifespan's thread does not show from this one); faiss uses BLAS only for
            # batches of 20+ queries, never for the service's one-query searches, so it is left out here.
            blas = [p for p in threadpool_info() if p["user_api"] == "blas" and "faiss" not in p["filepath"]]
            assert blas and all(p["num_threads"] == 1 for p in blas)
            tokens = client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)  # type: ignore[union-attr]
            assert tokens == 5
