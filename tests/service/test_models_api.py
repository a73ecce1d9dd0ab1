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
from sqlalchemy import select

from service.app import create_app
from tests.conftest import read_rows
from tests.db import BACKENDS, FreshDatabases
from tests.service.conftest import BODY, PASSWORD, staged_client, unique
from tests.training.conftest import add_labels
from training.dataset import grow_eval_slice
from training.registry import ModelRegistry
from triage.cases import audit
from triage.cases.accounts import create_user
from triage.config import Settings
from triage.nlp.agencies import default_registry
from triage.store.repositories import Submissions
from triage.store.tables import Case, Event

# Every test here stands on a real retrain (MLflow run, gate, registry): the full suite runs them.
pytestmark = pytest.mark.slow
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
        text_rate_per_minute=100_000,
        text_burst=100_000,
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

    # One model routes every agency: retraining it is beyond a handler (one agency), an admin's right.
    refused = app.post("/api/v1/models/retrain", headers=handler)
    assert refused.status_code == 403 and "own agency" in refused.json()["detail"]
    r = app.post("/api/v1/models/retrain", headers=admin)
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
    assert app.post("/api/v1/models/reload", headers=handler).status_code == 403  # admin only
    # Starting a retrain is a staff action on the audit trail.
    with svc.db.read() as s:
        retrains = list(s.scalars(select(Event).where(Event.action == "model_retrain")))
    assert [e.after["job"] for e in retrains] == [job_id, job2["id"]]  # type: ignore[index]


# ---- promote and rollback by hand ----------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def promo(
    request: pytest.FixtureRequest,
    encoder_path: Path,
    fresh_databases: FreshDatabases,
    tmp_path_factory: Any,
    shared_data: Path,
) -> Iterator[TestClient]:
    """A service whose registry holds v1 (the champion, trained here) and v2 (never promoted)."""
    with staged_client(
        encoder_path=encoder_path,
        database_url=fresh_databases.new(str(request.param)),
        data_dir=tmp_path_factory.mktemp("promote-api"),
        registry_model="promo-api",
        shared_data=shared_data,
        intake_rate_per_minute=100_000,
        intake_burst=100_000,
        text_rate_per_minute=100_000,
        text_burst=100_000,
    ) as client:
        yield client


def _suggestion_version(client: TestClient) -> str:
    """The model version stored with a new submission's suggestion (the case and the suggestion both carry it)."""
    r = client.post("/api/v1/submissions", json={**BODY, "title": unique("Hoàn thuế chậm ")})
    assert r.status_code == 201, r.text
    with client.app.state.svc.db.read() as s:  # type: ignore[attr-defined]
        sub = Submissions(s).by_tracking_code(r.json()["tracking_code"])
        assert sub is not None
        case = s.get(Case, sub.case_id)
        assert case is not None and case.suggestion is not None
        assert case.suggestion["model_version"] == case.model_version
        return str(case.model_version)


def _events(client: TestClient, action: str) -> list[Event]:
    with client.app.state.svc.db.read() as s:  # type: ignore[attr-defined]
        return list(s.scalars(select(Event).where(Event.action == action).order_by(Event.seq)))


def test_promote_and_rollback_are_audited_and_served_at_once(promo: TestClient) -> None:
    handler, admin = _token(promo, "handler"), _token(promo, "admin")
    assert "agency:promo-api/v1+router-" in _suggestion_version(promo)

    # Nothing served before v1: a rollback has nowhere to go (409), an unknown version is 404.
    r = promo.post("/api/v1/models/rollback", headers=admin)
    assert r.status_code == 409 and "no predecessor" in r.json()["detail"]
    r = promo.post("/api/v1/models/99/promote", headers=admin)
    assert r.status_code == 404 and "no version 99" in r.json()["detail"]
    assert promo.post("/api/v1/models/0/promote", headers=admin).status_code == 422
    assert promo.post("/api/v1/models/v2/promote", headers=admin).status_code == 422
    # The only move so far is the champion gate's own promotion of v1 (retrain), audited like a manual one.
    [gate] = _events(promo, "model_promote")
    assert gate.actor == "test" and gate.before["champion"] is None and gate.after["champion"] == 1  # type: ignore[index]
    assert gate.after["reason"].startswith("champion gate: ")  # type: ignore[index]
    assert _events(promo, "model_rollback") == []

    # A handler may not move the champion of a model that routes every agency; an admin promotes v2:
    # the answer, the next suggestion and /health all name v2 at once.
    assert promo.post("/api/v1/models/2/promote", headers=handler).status_code == 403
    assert promo.post("/api/v1/models/rollback", headers=handler).status_code == 403
    r = promo.post("/api/v1/models/2/promote", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    moved = (body["action"], body["before"], body["after"], body["served_registry_version"])
    assert moved == ("model_promote", 1, 2, 2)
    assert "promo-api/v2+router-" in body["served"]
    assert "agency:promo-api/v2+router-" in _suggestion_version(promo)
    assert "promo-api/v2" in promo.get("/health").json()["model_version"]
    [_, event] = _events(promo, "model_promote")
    assert event.seq == body["event_seq"] and event.actor == body["actor"] and event.actor.startswith("admin-")
    assert event.before == {"registry_model": "promo-api", "champion": 1}
    assert event.after is not None and event.after["champion"] == 2 and event.model_version == "promo-api/v2"

    # Rollback gives v1 back; a second rollback has no older champion left (409), and changes nothing.
    r = promo.post("/api/v1/models/rollback", headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["before"], r.json()["after"]) == (2, 1)
    assert "agency:promo-api/v1+router-" in _suggestion_version(promo)
    [back] = _events(promo, "model_rollback")
    assert back.before == {"registry_model": "promo-api", "champion": 2} and back.after["champion"] == 1  # type: ignore[index]
    again = promo.post("/api/v1/models/rollback", headers=admin)
    assert again.status_code == 409
    assert len(_events(promo, "model_rollback")) == 1
    listed = promo.get("/api/v1/models", headers=handler).json()
    assert listed["served_registry_version"] == 1 and [v["champion"] for v in listed["versions"]] == [False, True]

    # Promote v2, promote v1, then two rollbacks walk back along the history: v2, then v1... (history 1, 2, 1)
    assert promo.post("/api/v1/models/2/promote", headers=admin).status_code == 200
    assert promo.post("/api/v1/models/1/promote", headers=admin).status_code == 200
    assert promo.post("/api/v1/models/rollback", headers=admin).json()["after"] == 2
    assert promo.post("/api/v1/models/rollback", headers=admin).json()["after"] == 1
    assert promo.post("/api/v1/models/rollback", headers=admin).status_code == 409
    with promo.app.state.svc.db.read() as s:  # type: ignore[attr-defined]
        assert audit.verify(s).ok


@pytest.mark.parametrize("role", ["anonymous", "clerk", "analyst"])
def test_promote_and_rollback_refused_for_other_roles(promo: TestClient, role: str) -> None:
    h = {} if role == "anonymous" else _token(promo, role)
    before = promo.get("/health").json()["model_version"]
    want = 401 if role == "anonymous" else 403
    assert promo.post("/api/v1/models/2/promote", headers=h).status_code == want
    assert promo.post("/api/v1/models/rollback", headers=h).status_code == want
    assert promo.get("/health").json()["model_version"] == before
