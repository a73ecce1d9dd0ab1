"""The learning loop through the real service: retrain job, hot reload of the champion, rollback, RBAC.

Its own app per backend with its own MLflow store (sqlite in a temporary folder), so the versions
it registers are known; the labels are real Zalo questions with their issuing ministries.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import read_rows
from tests.db import BACKENDS, FreshDatabases
from tests.service.conftest import BODY, PASSWORD, unique
from tests.training.conftest import add_labels
from training.dataset import grow_eval_slice
from training.registry import ModelRegistry
from triage.accounts import create_user
from triage.agencies import default_registry
from triage.config import Settings

JOB_DEADLINE_S = 600


@pytest.fixture(scope="module", params=BACKENDS)
def app(
    request: pytest.FixtureRequest, encoder_path: Path, fresh_databases: FreshDatabases, tmp_path_factory: Any
) -> Iterator[TestClient]:
    settings = Settings(
        encoder_path=encoder_path,
        database_url=fresh_databases.new(str(request.param)),
        data_dir=tmp_path_factory.mktemp("models-api"),
        registry_model="hot-reload",
        escalate_interval_s=0,
        model_poll_s=0,
        intake_rate_per_minute=100_000,
        intake_burst=100_000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _token(client: TestClient, role: str) -> dict[str, str]:
    name = unique(f"{role}-")
    with client.app.state.svc.db.session() as s:  # type: ignore[attr-defined]
        create_user(s, username=name, password=PASSWORD, role=role, agency_code="BTC" if role == "handler" else None)
    r = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    """Follow a background job to its end (it trains a real model: tens of seconds)."""
    deadline = time.monotonic() + JOB_DEADLINE_S
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/models/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("succeeded", "failed"):
            return dict(job)
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still running after {JOB_DEADLINE_S} s")


def _version(client: TestClient) -> str:
    r = client.post("/api/v1/route", json={"text": "Hồ sơ hoàn thuế giá trị gia tăng cần những giấy tờ gì?"})
    assert r.status_code == 200, r.text
    return str(r.json()["model_version"])


def test_retrain_job_then_hot_reload_and_rollback_without_restart(app: TestClient, shared_data: Path) -> None:
    svc = app.app.state.svc  # type: ignore[attr-defined]
    reg = default_registry()
    rows = [
        (r["text"], reg.resolve(r["agency"]).code) for r in read_rows(shared_data / "zalo_legal/agency_train.jsonl")
    ]
    top = {c for c, _ in Counter(c for _, c in rows).most_common(4)}
    per: Counter[str] = Counter()
    picked = []
    for text, code in rows:
        if code in top and per[code] < 16:
            per[code] += 1
            picked.append((text, code))
    add_labels(svc.db, picked)
    with svc.db.session() as s:
        grow_eval_slice(s, fraction=0.25, actor="test")

    handler, admin, clerk = _token(app, "handler"), _token(app, "admin"), _token(app, "clerk")
    assert "agency:cold-start" in _version(app)
    assert app.post("/api/v1/models/retrain", headers=clerk).status_code == 403

    r = app.post("/api/v1/models/retrain", headers=handler)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    busy = app.post("/api/v1/models/retrain", headers=admin)
    assert busy.status_code == 409 and "one job at a time" in busy.json()["detail"]
    job = _wait(app, job_id, handler)
    assert job["state"] == "succeeded", job["error"]
    assert job["progress"] == 1.0 and job["result"]["version"] == 1 and job["result"]["promoted"]

    # Served at once, without a restart: new suggestions, /route and /health carry the registry version.
    assert "agency:hot-reload/v1+router-" in _version(app)
    assert "hot-reload/v1" in app.get("/health").json()["model_version"]
    sub = app.post("/api/v1/submissions", json=BODY)
    assert sub.status_code == 201, sub.text
    cases = app.get("/api/v1/cases", headers=admin, params={"limit": 1}).json()["items"]
    detail = app.get(f"/api/v1/cases/{cases[0]['id']}", headers=admin).json()
    assert "hot-reload/v1" in detail["model_version"]

    # A second run on the same labels ties with the champion, so the gate lets it through: v2 served.
    job2 = _wait(app, app.post("/api/v1/models/retrain", headers=admin).json()["id"], admin)
    assert job2["result"]["version"] == 2 and job2["result"]["promoted"], job2
    assert "hot-reload/v2" in _version(app)

    # A rollback from outside the service (the CLI does exactly this) is picked up on the next check.
    ModelRegistry(svc.settings).rollback()
    assert "hot-reload/v2" in _version(app)  # not yet checked
    listed = app.post("/api/v1/models/reload", headers=admin)
    assert listed.status_code == 200 and listed.json()["served_registry_version"] == 1
    assert [v["champion"] for v in listed.json()["versions"]] == [False, True]
    assert "hot-reload/v1" in _version(app)

    assert app.get("/api/v1/models/jobs/ffffffff", headers=admin).status_code == 404
    assert app.post("/api/v1/models/reload", headers=handler).status_code == 403
