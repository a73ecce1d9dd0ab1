"""The models page's forms through the real app on SQLite and PostgreSQL (no browser): versions with their
metrics, promote / rollback with CSRF, refusals explained, roles, and a retrain followed to its end."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.state import ServiceState
from tests.db import BACKENDS, FreshDatabases
from tests.service.conftest import PASSWORD, staged_client, unique
from triage.cases.accounts import create_user
from triage.store.tables import Event

# Every test here stands on a real retrain (MLflow run, gate, registry): the full suite runs them.
pytestmark = pytest.mark.slow
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
JOB_DEADLINE_S = 600


@pytest.fixture(scope="module", params=BACKENDS)
def app(
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
        data_dir=tmp_path_factory.mktemp("models-forms"),
        registry_model="promo-web",
        shared_data=shared_data,
    ) as client:
        yield client


def _svc(app: TestClient) -> ServiceState:
    svc: ServiceState = app.app.state.svc  # type: ignore[attr-defined]
    return svc


def signed_in(app: TestClient, role: str) -> tuple[TestClient, str]:
    """A browser (own cookie jar) signed in through the login form as a new account of ``role``."""
    name = unique(f"{role}-")
    with _svc(app).db.session() as s:
        create_user(s, username=name, password=PASSWORD, role=role, agency_code="BTC" if role == "handler" else None)
    client = TestClient(app.app)
    r = client.post(
        "/login",
        data={"csrf_token": csrf(client, "/login"), "username": name, "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client, name


def csrf(client: TestClient, path: str = "/staff/models") -> str:
    match = TOKEN.search(client.get(path).text)
    assert match
    return match.group(1)


def champion_row(html: str) -> str:
    match = re.search(r'<tr id="version-(\d+)" class="is-champion"', html)
    assert match, "no champion row on the page"
    return match.group(1)


def events(app: TestClient, action: str) -> list[Event]:
    with _svc(app).db.read() as s:
        return list(s.scalars(select(Event).where(Event.action == action).order_by(Event.seq)))


def test_page_lists_versions_with_metrics_and_the_champion(app: TestClient) -> None:
    client, _ = signed_in(app, "admin")
    r = client.get("/staff/models")
    assert r.status_code == 200
    page = r.text
    assert champion_row(page) == "1" and 'id="version-2"' in page
    assert "Đang phục vụ" in page and "Đưa v2 vào phục vụ" in page and "Đưa v1 vào phục vụ" not in page
    for header in ("Macro F1", "Top-1", "Top-3", "ECE"):
        assert f">{header}</th>" in page
    # The slice metrics come from the version's MLflow run, written the Vietnamese way (0,xxx).
    assert re.search(r'data-label="Top-3">[01],\d{3}<', page)
    assert 'id="per-agency-1"' in page and "Chỉ số theo cơ quan của v1 (3 cơ quan)" in page
    assert "Bộ " in page.split('id="per-agency-1"')[1].split("</details>")[0]  # agencies by name
    assert 'id="no-rollback"' in page  # v1 has no predecessor
    assert 'href="/static/models.css"' in page and 'src="/static/models.js"' in page
    assert client.get("/static/models.js").status_code == 200


def test_promote_and_rollback_forms_are_audited_and_served(app: TestClient) -> None:
    client, name = signed_in(app, "admin")  # one model routes every agency: moving it is an admin's right
    token = csrf(client)
    r = client.post("/staff/models/2/promote", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/models?done=promote"
    page = client.get(r.headers["location"]).text
    assert "Đã đưa phiên bản v2 vào phục vụ" in page and champion_row(page) == "2"
    assert "promo-web/v2+router-" in _svc(app).pipeline.model_version  # served at once, no restart
    assert 'id="rollback-target">v1<' in page
    [gate, event] = events(app, "model_promote")  # the retrain gate's own promotion of v1, then this one
    assert gate.after is not None and gate.after["champion"] == 1 and gate.after["reason"].startswith("champion gate")
    assert event.actor == name and event.before is not None and event.before["champion"] == 1

    r = client.post("/staff/models/rollback", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "Đã quay lui: phiên bản v1 phục vụ trở lại" in page and champion_row(page) == "1"
    assert "promo-web/v1+router-" in _svc(app).pipeline.model_version
    assert [e.after["champion"] for e in events(app, "model_rollback")] == [1]  # type: ignore[index]

    # Nothing older to go back to: explained on the page (409), nothing recorded.
    r = client.post("/staff/models/rollback", data={"csrf_token": token})
    assert r.status_code == 409 and "Không thể quay lui" in r.text and 'id="models-error"' in r.text
    assert len(events(app, "model_rollback")) == 1
    r = client.post("/staff/models/99/promote", data={"csrf_token": token})
    assert r.status_code == 404 and "Không tìm thấy" in r.text
    assert "promo-web/v1+router-" in _svc(app).pipeline.model_version


def test_forms_without_a_valid_csrf_token_change_nothing(app: TestClient) -> None:
    client, _ = signed_in(app, "admin")
    before = _svc(app).pipeline.model_version
    n = len(events(app, "model_promote"))
    for data in ({}, {"csrf_token": "giả-mạo"}):
        r = client.post("/staff/models/2/promote", data=data)
        assert r.status_code == 403 and "CSRF" in r.text
    other = csrf(TestClient(app.app), "/login")  # a valid token of another browser
    assert client.post("/staff/models/rollback", data={"csrf_token": other}).status_code == 403
    r = client.post(
        "/staff/models/2/promote", data={"csrf_token": csrf(client)}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    assert _svc(app).pipeline.model_version == before and len(events(app, "model_promote")) == n


@pytest.mark.parametrize("role", ["clerk", "analyst"])
def test_other_roles_neither_see_nor_use_the_page(app: TestClient, role: str) -> None:
    client, _ = signed_in(app, role)
    token = csrf(client, "/staff/queue")
    before = _svc(app).pipeline.model_version
    assert client.get("/staff/models").status_code == 403
    assert client.post("/staff/models/2/promote", data={"csrf_token": token}).status_code == 403
    assert client.post("/staff/models/rollback", data={"csrf_token": token}).status_code == 403
    assert client.post("/staff/models/retrain", data={"csrf_token": token}).status_code == 403
    assert client.get("/staff/models/jobs/abc123").status_code == 403
    assert _svc(app).pipeline.model_version == before
    anonymous = TestClient(app.app).get("/staff/models", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/staff/models"


def test_retrain_button_starts_a_job_the_page_follows(app: TestClient) -> None:
    client, name = signed_in(app, "admin")
    token = csrf(client)
    r = client.post("/staff/models/retrain", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    match = re.fullmatch(r"/staff/models\?job=([0-9a-f]+)#retrain", r.headers["location"])
    assert match
    job_id = match.group(1)
    page = client.get(f"/staff/models?job={job_id}").text
    assert f'data-job="{job_id}"' in page and 'id="job-progress"' in page
    busy = client.post("/staff/models/retrain", data={"csrf_token": token})
    assert busy.status_code == 409 and "Đang có một lượt huấn luyện lại chạy" in busy.text
    deadline = time.monotonic() + JOB_DEADLINE_S
    while True:
        job = client.get(f"/staff/models/jobs/{job_id}").json()
        assert 0.0 <= job["progress"] <= 1.0 and job["stage_label"]
        if job["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert job["state"] == "succeeded", job["error"]
    page = client.get(f"/staff/models?job={job_id}").text
    assert 'id="job-result"' in page and f"v{job['result']['version']}" in page and 'value="100"' in page
    assert f'id="version-{job["result"]["version"]}"' in page
    [started] = [e for e in events(app, "model_retrain") if e.after and e.after["job"] == job_id]
    assert started.actor == name
    assert client.get("/staff/models/jobs/ffff0000").status_code == 404
