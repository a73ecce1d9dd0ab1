"""Scoping (issue 20, item 4): model management is beyond a handler (one agency), and a handler is shown
other agencies' similar cases without any id or link it could open."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.security.conftest import PASSWORD, account, bearer, svc_of, unique
from triage.cases.accounts import Principal, Role, create_user
from triage.cases.casework import Casework
from triage.cases.intake import NewSubmission, receive
from triage.store.repositories import Cases
from triage.store.tables import Event


def _browser(app: TestClient, role: str, agency: str | None = None) -> tuple[TestClient, str]:
    """A signed-in browser and a CSRF token for its forms."""
    name = account(app, role, agency)
    client = TestClient(app.app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    r = client.post(
        "/login", data={"csrf_token": token.group(1), "username": name, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return client, token.group(1)


def _model_events(app: TestClient) -> int:
    with svc_of(app).db.read() as s:
        return int(s.scalar(select(func.count()).where(Event.action.like("model_%"))) or 0)


def test_handler_may_not_retrain_promote_or_roll_back_the_shared_model(app: TestClient) -> None:
    handler, admin = bearer(app, "handler", "BTC"), bearer(app, "admin")
    before = (_model_events(app), svc_of(app).pipeline.model_version)
    for path in ("/api/v1/models/retrain", "/api/v1/models/1/promote", "/api/v1/models/rollback"):
        r = app.post(path, headers=handler)
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert "own agency" in r.json()["detail"]
    assert svc_of(app).models is not None and svc_of(app).models.running_job() is None  # type: ignore[union-attr]
    assert (_model_events(app), svc_of(app).pipeline.model_version) == before
    # Reading stays open to handlers; an admin gets past the right to the registry's own answers.
    assert app.get("/api/v1/models", headers=handler).status_code == 200
    assert app.post("/api/v1/models/99/promote", headers=admin).status_code == 404
    assert app.post("/api/v1/models/rollback", headers=admin).status_code == 409


def test_handler_models_page_offers_no_actions_and_refuses_the_forms(app: TestClient) -> None:
    client, token = _browser(app, "handler", "BTC")
    page = client.get("/staff/models")
    assert page.status_code == 200
    assert 'action="/staff/models/retrain"' not in page.text and "/promote" not in page.text
    for path in ("/staff/models/retrain", "/staff/models/1/promote", "/staff/models/rollback"):
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    admin, _ = _browser(app, "admin")
    assert 'action="/staff/models/retrain"' in admin.get("/staff/models").text  # the control is the page's


def _case(app: TestClient, agency: str, title: str) -> int:
    svc = svc_of(app)
    receipt = receive(
        svc.db,
        NewSubmission(kind="phan_anh", submitter_type="citizen", title=title, content=f"{title}: nội dung chi tiết."),
        policy=svc.policy,
    )
    with svc.db.session() as s:
        staff = create_user(s, username=unique("stager-"), password=PASSWORD, role="admin")
        admin = Principal(user_id=staff.id, username=staff.username, role=Role.ADMIN)
        Casework(s, admin, policy=svc.policy, calendar=svc.calendar).route(receipt.case_id, agency=agency)
    return receipt.case_id


def test_handler_sees_other_agencies_similar_cases_without_ids(app: TestClient) -> None:
    own_other = _case(app, "BTC", "Hoàn thuế chậm ở chi cục")
    foreign = _case(app, "BYT", "Hoàn thuế chậm tại bệnh viện")
    case_id = _case(app, "BTC", "Hoàn thuế thu nhập cá nhân chậm")
    with svc_of(app).db.session() as s:
        case = Cases(s).get(case_id)
        assert case is not None
        similar = [{"case_id": foreign, "score": 0.91}, {"case_id": own_other, "score": 0.88}]
        case.suggestion = {**(case.suggestion or {}), "similar": similar, "duplicates": similar}

    handler = bearer(app, "handler", "BTC")
    body = app.get(f"/api/v1/cases/{case_id}", headers=handler).json()
    for key in ("similar", "duplicates"):
        shown = body["suggestion"][key]
        assert foreign not in [x["case_id"] for x in shown], key
        assert 0.91 in [x["score"] for x in shown]  # the match itself is still shown
    assert own_other in [x["case_id"] for x in body["suggestion"]["similar"]]
    seen_by_admin = app.get(f"/api/v1/cases/{case_id}", headers=bearer(app, "admin")).json()["suggestion"]
    assert foreign in [x["case_id"] for x in seen_by_admin["similar"]]

    client, _ = _browser(app, "handler", "BTC")
    page = client.get(f"/staff/cases/{case_id}").text
    listed = page.split('id="similar"')[1].split("</ul>")[0]
    assert f"#{foreign}" not in listed and f"/staff/cases/{foreign}" not in listed
    assert f"/staff/cases/{own_other}" in listed and "cơ quan khác" in listed


def test_handler_is_not_told_the_number_of_another_agencys_case_its_case_repeats(app: TestClient) -> None:
    foreign = _case(app, "BYT", "Hoàn thuế chậm tại bệnh viện")
    case_id = _case(app, "BTC", "Hoàn thuế thu nhập cá nhân chậm lần hai")
    svc = svc_of(app)
    with svc.db.session() as s:
        staff = create_user(s, username=unique("stager-"), password=PASSWORD, role="admin")
        admin = Principal(user_id=staff.id, username=staff.username, role=Role.ADMIN)
        Casework(s, admin, policy=svc.policy, calendar=svc.calendar).mark_duplicate(case_id, target=foreign)
    body = app.get(f"/api/v1/cases/{case_id}", headers=bearer(app, "handler", "BTC")).json()
    assert body["state"] == "duplicate" and body["duplicate_of"] is None
    payloads = [e.get(k) for e in body["timeline"] for k in ("before", "after") if e.get(k)]
    refs = {str(p.get(k)) for p in payloads for k in ("duplicate_of", "merged_into", "target")}
    assert str(foreign) not in refs, payloads
    admin_view = app.get(f"/api/v1/cases/{case_id}", headers=bearer(app, "admin")).json()
    assert admin_view["duplicate_of"] == foreign
