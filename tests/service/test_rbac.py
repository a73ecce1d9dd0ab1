"""Who may do what: each role against each endpoint, and agencies sealed off from each other.

The expected table is written out here on purpose (not derived from ``triage.cases.accounts.PERMISSIONS``),
so a wrong entry in the code's table fails a test. A handler of another agency gets 404 for the
case on every endpoint, reads and writes alike: for it the case does not exist.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.conftest import BODY, Service
from triage.cases.workflow import CaseState

OWN, OTHER = "BTC", "BYT"
ROLES = ["anonymous", "clerk", "handler_own", "handler_other", "analyst", "admin"]

# endpoint -> (state to stage, roles allowed)
ACTIONS: dict[str, tuple[CaseState, set[str]]] = {
    "route": (CaseState.TRIAGED, {"clerk", "admin"}),
    "assign": (CaseState.TRIAGED, {"clerk", "handler", "admin"}),
    "start": (CaseState.ASSIGNED, {"handler", "admin"}),
    "transfer": (CaseState.TRIAGED, {"clerk", "handler", "admin"}),
    "accept-transfer": (CaseState.TRANSFERRED, {"clerk", "handler", "admin"}),
    "return": (CaseState.TRIAGED, {"clerk", "handler", "admin"}),
    "resubmit": (CaseState.RETURNED, {"clerk", "admin"}),
    "respond": (CaseState.IN_PROGRESS, {"handler", "admin"}),
    "close": (CaseState.RESPONDED, {"clerk", "handler", "admin"}),
    "reopen": (CaseState.RESPONDED, {"clerk", "handler", "admin"}),
    "reject": (CaseState.TRIAGED, {"clerk", "handler", "admin"}),
    "duplicate": (CaseState.TRIAGED, {"clerk", "handler", "admin"}),
    "merge": (CaseState.TRIAGED, {"clerk", "handler", "admin"}),
    "moderation": (CaseState.TRIAGED, {"clerk", "admin"}),  # confirm / dismiss an abuse or spam flag
}


def headers(service: Service, role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    if role.startswith("handler"):
        return service.headers("handler", OWN if role == "handler_own" else OTHER)
    return service.headers(role)


def action_body(service: Service, endpoint: str) -> dict[str, Any] | None:
    bodies: dict[str, dict[str, Any]] = {
        "route": {"agency": OWN},
        "assign": {"assignee": service.handler_name(OWN)},
        "transfer": {"agency": OTHER},
        "return": {"reason": "thiếu giấy tờ"},
        "respond": {"body": "Đã giải quyết."},
        "reopen": {"reason": "trả lời chưa đủ"},
        "reject": {"reason": "không thuộc phạm vi"},
        "duplicate": {"target": service.case_in(CaseState.TRIAGED, agency=OWN)},
        "merge": {"target": service.case_in(CaseState.TRIAGED, agency=OWN)},
        "moderation": {"decision": "dismiss", "note": "không vi phạm"},
    }
    return bodies.get(endpoint)


def flag(service: Service, case_id: int) -> None:
    """Stage a screened case carrying a moderation flag (as the pipeline stores it at intake)."""
    from triage.store.tables import Case

    moderation = {"flagged": True, "model_flagged": True, "reasons": ["abuse"], "abuse": 0.9, "spam": 0.1}
    with service.svc.db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.suggestion = {**(case.suggestion or {}), "moderation": {**moderation, "decision": None}}


def flagged(service: Service, case_id: int) -> bool:
    r = service.client.get(f"/api/v1/cases/{case_id}", headers=service.headers("admin"))
    return bool(r.json()["suggestion"]["moderation"]["flagged"])


def expected_action_status(role: str, allowed: set[str]) -> int:
    if role == "anonymous":
        return 401
    if role == "handler_other":
        return 404
    base = "handler" if role == "handler_own" else role
    return 200 if base in allowed else 403


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ACTIONS))
def test_action_matrix(service: Service, endpoint: str, role: str) -> None:
    state, allowed = ACTIONS[endpoint]
    cid = service.case_in(state, agency=OWN)
    if endpoint == "moderation":
        flag(service, cid)
    body = action_body(service, endpoint)
    r = service.client.post(f"/api/v1/cases/{cid}/{endpoint}", json=body, headers=headers(service, role))
    want = expected_action_status(role, allowed)
    assert r.status_code == want, r.text
    if want != 200:
        assert service.state_of(cid) == state.value  # refused writes change nothing
        if endpoint == "moderation":
            assert flagged(service, cid)
    if want == 401:
        assert r.headers["www-authenticate"] == "Bearer"


READS = {
    # endpoint -> expected status per role
    "list": {"anonymous": 401, "clerk": 200, "handler_own": 200, "handler_other": 200, "analyst": 200, "admin": 200},
    "detail": {"anonymous": 401, "clerk": 200, "handler_own": 200, "handler_other": 404, "analyst": 200, "admin": 200},
    "stats": {"anonymous": 401, "clerk": 403, "handler_own": 403, "handler_other": 403, "analyst": 200, "admin": 200},
    "themes": {"anonymous": 401, "clerk": 403, "handler_own": 403, "handler_other": 403, "analyst": 200, "admin": 200},
    "emerging": {
        "anonymous": 401,
        "clerk": 403,
        "handler_own": 403,
        "handler_other": 403,
        "analyst": 200,
        "admin": 200,
    },
    "agencies": dict.fromkeys(ROLES, 200),
    "track": dict.fromkeys(ROLES, 200),
    "submit": dict.fromkeys(ROLES, 201),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(READS))
def test_read_matrix(service: Service, endpoint: str, role: str) -> None:
    cid = service.case_in(CaseState.ASSIGNED, agency=OWN, title=f"Ma trận quyền {endpoint} {role}")
    h = headers(service, role)
    c = service.client
    if endpoint == "list":
        r = c.get("/api/v1/cases", params={"q": f"Ma trận quyền {endpoint} {role}"}, headers=h)
    elif endpoint == "detail":
        r = c.get(f"/api/v1/cases/{cid}", headers=h)
    elif endpoint == "stats":
        r = c.get("/api/v1/stats", headers=h)
    elif endpoint in ("themes", "emerging"):  # a quiet past period: the permission is under test, not clustering
        path = "/api/v1/themes" if endpoint == "themes" else "/api/v1/reports/emerging"
        r = c.get(path, params={"since": "2023-05-01", "until": "2023-05-28"}, headers=h)
    elif endpoint == "agencies":
        r = c.get("/api/v1/agencies", headers=h)
    elif endpoint == "track":
        code = c.get(f"/api/v1/cases/{cid}", headers=service.headers("admin")).json()["submissions"][0]["tracking_code"]
        r = c.get(f"/api/v1/track/{code}", headers=h)
    else:
        r = c.post("/api/v1/submissions", json=BODY, headers=h)
    assert r.status_code == READS[endpoint][role], r.text
    if endpoint == "list" and r.status_code == 200:
        ids = [item["id"] for item in r.json()["items"]]
        assert (cid in ids) == (role != "handler_other")


def test_handler_list_shows_only_its_agency(service: Service) -> None:
    mine = service.case_in(CaseState.TRIAGED, agency=OWN, title="Phân quyền danh sách A")
    theirs = service.case_in(CaseState.TRIAGED, agency=OTHER, title="Phân quyền danh sách A")
    h = service.headers("handler", OWN)
    items = service.client.get("/api/v1/cases", params={"q": "Phân quyền danh sách A"}, headers=h).json()["items"]
    assert [i["id"] for i in items] == [mine]
    asked = service.client.get("/api/v1/cases", params={"agency": OTHER, "q": "Phân quyền danh sách A"}, headers=h)
    assert asked.status_code == 200 and asked.json() == {"total": 0, "items": []}
    clerk = service.headers("clerk")
    both = service.client.get("/api/v1/cases", params={"q": "Phân quyền danh sách A"}, headers=clerk).json()
    assert {i["id"] for i in both["items"]} == {mine, theirs}


def test_cross_agency_targets_are_invisible(service: Service) -> None:
    """A handler cannot link its case to another agency's case either: it does not exist for it."""
    mine = service.case_in(CaseState.TRIAGED, agency=OWN)
    theirs = service.case_in(CaseState.TRIAGED, agency=OTHER)
    h = service.headers("handler", OWN)
    for endpoint in ("duplicate", "merge"):
        r = service.client.post(f"/api/v1/cases/{mine}/{endpoint}", json={"target": theirs}, headers=h)
        assert r.status_code == 422 and f"case {theirs} not found" in r.json()["detail"]
    missing = service.client.get("/api/v1/cases/999999", headers=h)
    hidden = service.client.get(f"/api/v1/cases/{theirs}", headers=h)
    assert missing.status_code == hidden.status_code == 404
    assert missing.json()["detail"].replace("999999", "N") == hidden.json()["detail"].replace(str(theirs), "N")


def test_analyst_sees_masked_texts_and_no_contact(service: Service) -> None:
    cid = service.case_in(
        CaseState.TRIAGED, content="Gọi tôi theo số 0912 345 678 hoặc email an.nguyen@example.vn để xác minh."
    )
    staff = service.client.get(f"/api/v1/cases/{cid}", headers=service.headers("clerk")).json()
    analyst = service.client.get(f"/api/v1/cases/{cid}", headers=service.headers("analyst")).json()
    assert "0912 345 678" in staff["submissions"][0]["content"]
    assert staff["submissions"][0]["contact"]["name"] == "Nguyễn Văn An"
    sub = analyst["submissions"][0]
    assert "0912" not in sub["content"] and "an.nguyen@example.vn" not in sub["content"]
    assert "[SĐT]" in sub["content"] and "[EMAIL]" in sub["content"]
    assert sub["contact"] is None and sub["content_raw"] is None and sub["title_raw"] is None
    assert "Nguyễn Văn An" not in str(analyst)


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsImV4cCI6OTk5OTk5OTk5OX0.forged-signature"],
)
def test_bad_tokens_are_401(service: Service, token: str) -> None:
    r = service.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_wrong_password_is_401(service: Service) -> None:
    name = service.user("clerk")[1].username
    r = service.client.post("/api/v1/auth/token", data={"username": name, "password": "sai-mật-khẩu-rồi"})
    unknown = service.client.post("/api/v1/auth/token", data={"username": "không-có-ai", "password": "whatever-123"})
    assert r.status_code == unknown.status_code == 401
    assert r.json()["detail"] == unknown.json()["detail"]  # no hint which names exist


def test_disabled_account_is_out_at_once(service: Service) -> None:
    from sqlalchemy import update

    from triage.store.tables import User

    token, who = service.user("analyst", "P-HN")
    assert service.client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with service.svc.db.session() as s:
        s.execute(update(User).where(User.id == who.user_id).values(active=False))
    assert service.client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 401


# The learning loop's endpoints (this session's service has no registered version: a role that gets past
# the permission check meets 404 for the unknown version and 409 for a rollback with nothing to go back to).
# Moving or retraining the model is an admin's: it routes every agency's cases, beyond one handler's.
MODELS = {
    "models_list": {
        "anonymous": 401,
        "clerk": 403,
        "handler_own": 200,
        "handler_other": 200,
        "analyst": 200,
        "admin": 200,
    },
    "promote": {"anonymous": 401, "clerk": 403, "handler_own": 403, "handler_other": 403, "analyst": 403, "admin": 404},
    "rollback": {
        "anonymous": 401,
        "clerk": 403,
        "handler_own": 403,
        "handler_other": 403,
        "analyst": 403,
        "admin": 409,
    },
    "reload": {"anonymous": 401, "clerk": 403, "handler_own": 403, "handler_other": 403, "analyst": 403, "admin": 200},
    # The admin starts a real job: test_models_api.
    "retrain": {"anonymous": 401, "clerk": 403, "handler_own": 403, "handler_other": 403, "analyst": 403},
    "job": {"anonymous": 401, "clerk": 403, "handler_own": 404, "handler_other": 404, "analyst": 403, "admin": 404},
}


@pytest.mark.parametrize(("endpoint", "role"), [(e, r) for e, want in MODELS.items() for r in want])
def test_models_matrix(service: Service, endpoint: str, role: str) -> None:
    h = headers(service, role)
    c = service.client
    served = service.svc.pipeline.model_version
    if endpoint == "models_list":
        r = c.get("/api/v1/models", headers=h)
    elif endpoint == "promote":
        r = c.post("/api/v1/models/7/promote", headers=h)
    elif endpoint == "rollback":
        r = c.post("/api/v1/models/rollback", headers=h)
    elif endpoint == "reload":
        r = c.post("/api/v1/models/reload", headers=h)
    elif endpoint == "retrain":
        r = c.post("/api/v1/models/retrain", headers=h)
    else:
        r = c.get("/api/v1/models/jobs/abc123", headers=h)
    assert r.status_code == MODELS[endpoint][role], r.text
    assert service.svc.pipeline.model_version == served


# Campaigns: reads for every staff role; answering all for whoever may respond; a handler of another
# agency finds no campaign made of this agency's cases (404, like the cases themselves).
CAMPAIGNS = {
    "list": {"anonymous": 401, "clerk": 200, "handler_own": 200, "handler_other": 200, "analyst": 200, "admin": 200},
    "detail": {"anonymous": 401, "clerk": 200, "handler_own": 200, "handler_other": 404, "analyst": 200, "admin": 200},
    "respond": {"anonymous": 401, "clerk": 403, "handler_own": 200, "handler_other": 404, "analyst": 403, "admin": 200},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(CAMPAIGNS))
def test_campaign_matrix(service: Service, endpoint: str, role: str) -> None:
    from tests.service.test_campaigns_api import stage_campaign

    campaign_id, ids = stage_campaign(service, agency=OWN)
    h = headers(service, role)
    c = service.client
    if endpoint == "list":
        r = c.get("/api/v1/campaigns", params={"limit": 200}, headers=h)
    elif endpoint == "detail":
        r = c.get(f"/api/v1/campaigns/{campaign_id}", headers=h)
    else:
        r = c.post(
            f"/api/v1/campaigns/{campaign_id}/respond", json={"body": "Trả lời chung.", "case_ids": ids}, headers=h
        )
    want = CAMPAIGNS[endpoint][role]
    assert r.status_code == want, r.text
    if endpoint == "list" and want == 200:
        assert (campaign_id in [i["id"] for i in r.json()["items"]]) == (role != "handler_other")
    if endpoint == "detail" and want == 200:
        assert [i["id"] for i in r.json()["cases"]] == ids
    if endpoint == "respond":
        states = {service.state_of(cid) for cid in ids}
        assert states == ({"responded"} if want == 200 else {"in_progress"})  # refused: nothing answered


def test_campaign_shows_a_handler_only_its_agency_cases(service: Service) -> None:
    """A campaign spanning two agencies: each handler sees, counts and answers only its own cases."""
    from tests.service.test_campaigns_api import stage_campaign

    campaign_id, ids = stage_campaign(service, n=4, agency=None)
    with service.work() as w:
        for cid, agency in zip(ids, [OWN, OWN, OTHER, OTHER], strict=True):
            w.route(cid, agency=agency)
            w.assign(cid, assignee=service.handler_name(agency))
            w.start(cid)
    own, other = service.headers("handler", OWN), service.headers("handler", OTHER)
    mine = service.client.get(f"/api/v1/campaigns/{campaign_id}", headers=own).json()
    assert [c["id"] for c in mine["cases"]] == ids[:2] and mine["size"] == 2
    listed = service.client.get("/api/v1/campaigns", params={"min_size": 2, "limit": 200}, headers=own).json()
    assert [i["size"] for i in listed["items"] if i["id"] == campaign_id] == [2]
    r = service.client.post(
        f"/api/v1/campaigns/{campaign_id}/respond", json={"body": "Trả lời.", "case_ids": ids[:2]}, headers=own
    )
    assert r.status_code == 200 and r.json()["responded"] == ids[:2] and r.json()["skipped"] == []
    assert [service.state_of(cid) for cid in ids] == ["responded", "responded", "in_progress", "in_progress"]
    theirs = service.client.get(f"/api/v1/campaigns/{campaign_id}", headers=other).json()
    assert [c["id"] for c in theirs["cases"]] == ids[2:]
