"""Every (state, action) pair through the HTTP API: allowed ones move the case, refused ones are 409."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.conftest import Service
from triage.cases.workflow import TRANSITIONS, Action, CaseState

ENDPOINT = {
    Action.TRIAGE: "route",
    Action.ASSIGN: "assign",
    Action.START: "start",
    Action.TRANSFER: "transfer",
    Action.ACCEPT_TRANSFER: "accept-transfer",
    Action.RETURN_FOR_INFO: "return",
    Action.RESUBMIT: "resubmit",
    Action.RESPOND: "respond",
    Action.CLOSE: "close",
    Action.REOPEN: "reopen",
    Action.REJECT: "reject",
    Action.MARK_DUPLICATE: "duplicate",
    Action.MERGE: "merge",
}


def body_for(service: Service, action: Action) -> dict[str, Any] | None:
    """A valid body for ``action`` (so only the case's state can make it fail)."""
    if action is Action.TRIAGE:
        return {"agency": "BTC"}
    if action is Action.ASSIGN:
        return {"assignee": service.handler_name("BTC")}
    if action is Action.TRANSFER:
        return {"agency": "BYT", "reason": "thuộc lĩnh vực y tế"}
    if action in (Action.RETURN_FOR_INFO, Action.REOPEN, Action.REJECT):
        return {"reason": "lý do cụ thể"}
    if action is Action.RESPOND:
        return {"body": "Trả lời: hồ sơ đã được giải quyết."}
    if action in (Action.MARK_DUPLICATE, Action.MERGE):
        return {"target": service.submit(title="Bản trùng")}
    return None


# WITHDRAW is the submitter's, through the follow-up link (tests/service/test_citizen_api.py), not a staff endpoint.
STAFF_ACTIONS = [a for a in Action if a is not Action.WITHDRAW]


def test_endpoints_cover_every_action() -> None:
    assert set(ENDPOINT) == set(STAFF_ACTIONS)


@pytest.mark.parametrize("action", STAFF_ACTIONS, ids=lambda a: a.value)
@pytest.mark.parametrize("state", list(CaseState), ids=lambda s: s.value)
def test_transition(service: Service, state: CaseState, action: Action) -> None:
    cid = service.case_in(state)
    admin = service.headers("admin")
    before = service.client.get(f"/api/v1/cases/{cid}", headers=admin).json()
    assert before["state"] == state.value
    body = body_for(service, action)
    r = service.client.post(f"/api/v1/cases/{cid}/{ENDPOINT[action]}", json=body, headers=admin)
    after = service.client.get(f"/api/v1/cases/{cid}", headers=admin).json()
    expected = TRANSITIONS.get((state, action))
    if expected is None:
        assert r.status_code == 409, r.text
        assert f"cannot {action.name}" in r.json()["detail"]
        assert after["state"] == state.value
        assert len(after["timeline"]) == len(before["timeline"])  # nothing recorded
    else:
        assert r.status_code == 200, r.text
        assert r.json()["state"] == expected.value == after["state"]
        last = before["timeline"][-1]["seq"]
        assert [e["action"] for e in after["timeline"] if e["seq"] > last] == [action.value]


def test_refusal_lists_allowed_actions(service: Service) -> None:
    cid = service.case_in(CaseState.CLOSED)
    r = service.client.post(f"/api/v1/cases/{cid}/reject", json={"reason": "x"}, headers=service.headers("admin"))
    assert r.status_code == 409
    assert "terminal" in r.json()["detail"]
    cid = service.case_in(CaseState.ASSIGNED)
    r = service.client.post(f"/api/v1/cases/{cid}/respond", json={"body": "x"}, headers=service.headers("admin"))
    assert r.status_code == 409 and "START" in r.json()["detail"]


@pytest.mark.parametrize(
    ("state", "endpoint", "body", "needle"),
    [
        (CaseState.TRIAGED, "reject", {"reason": "   "}, "reason"),
        (CaseState.TRIAGED, "reject", {}, "reason"),
        (CaseState.TRIAGED, "return", {"reason": ""}, "reason"),
        (CaseState.TRIAGED, "transfer", {"agency": "BTC"}, "already"),
        (CaseState.TRIAGED, "transfer", {"agency": "Bộ Không Tồn Tại"}, "agency"),
        (CaseState.TRIAGED, "assign", {"assignee": "nobody-here"}, "assignee"),
        (CaseState.TRIAGED, "route", {"agency": "BTC", "kind": "khieu_nai"}, "kind"),
        (CaseState.TRIAGED, "duplicate", {"target": 10_000_000}, "not found"),
        (CaseState.IN_PROGRESS, "respond", {"body": "x", "extra": 1}, "extra"),
        (CaseState.IN_PROGRESS, "respond", {"body": "x" * 20_001}, "20000"),
    ],
)
def test_action_inputs_are_checked(
    service: Service, state: CaseState, endpoint: str, body: dict[str, Any], needle: str
) -> None:
    cid = service.case_in(state)
    r = service.client.post(f"/api/v1/cases/{cid}/{endpoint}", json=body, headers=service.headers("admin"))
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert service.state_of(cid) == state.value


def test_duplicate_of_itself_is_refused(service: Service) -> None:
    cid = service.case_in(CaseState.TRIAGED)
    r = service.client.post(f"/api/v1/cases/{cid}/duplicate", json={"target": cid}, headers=service.headers("admin"))
    assert r.status_code == 422 and "itself" in r.json()["detail"]


def test_assign_needs_a_handler_of_the_cases_agency(service: Service) -> None:
    cid = service.case_in(CaseState.TRIAGED, agency="BTC")
    other = service.handler_name("BYT")
    r = service.client.post(f"/api/v1/cases/{cid}/assign", json={"assignee": other}, headers=service.headers("admin"))
    assert r.status_code == 422 and "not a handler of agency BTC" in r.json()["detail"]


def test_merge_moves_submissions_and_tracking_follows(service: Service) -> None:
    admin = service.headers("admin")
    keep = service.case_in(CaseState.IN_PROGRESS)
    gone = service.case_in(CaseState.TRIAGED)
    code = service.client.get(f"/api/v1/cases/{gone}", headers=admin).json()["submissions"][0]["tracking_code"]
    r = service.client.post(f"/api/v1/cases/{gone}/merge", json={"target": keep}, headers=admin)
    assert r.status_code == 200, r.text
    absorbed = r.json()
    assert absorbed["state"] == "duplicate" and absorbed["merged_into"] == keep and absorbed["submissions"] == []
    kept = service.client.get(f"/api/v1/cases/{keep}", headers=admin).json()
    assert kept["state"] == "in_progress" and len(kept["submissions"]) == 2
    assert kept["timeline"][-1]["action"] == "absorb" and kept["timeline"][-1]["after"]["absorbed_case"] == gone
    assert service.client.get(f"/api/v1/track/{code}").json()["status"] == "in_progress"


@pytest.mark.parametrize("target_state", [CaseState.RESPONDED, CaseState.CLOSED, CaseState.REJECTED])
def test_merge_only_into_an_open_case(service: Service, target_state: CaseState) -> None:
    admin = service.headers("admin")
    cid = service.case_in(CaseState.TRIAGED)
    into = service.case_in(target_state)
    r = service.client.post(f"/api/v1/cases/{cid}/merge", json={"target": into}, headers=admin)
    assert r.status_code == 409 and "duplicate" in r.json()["detail"]
    assert service.state_of(cid) == "triaged"
    r = service.client.post(f"/api/v1/cases/{cid}/duplicate", json={"target": into}, headers=admin)
    assert r.status_code == 200 and r.json()["duplicate_of"] == into


def test_transfer_resets_the_answer_deadline_and_waits_for_acceptance(service: Service) -> None:
    admin = service.headers("admin")
    cid = service.case_in(CaseState.ASSIGNED)
    r = service.client.post(f"/api/v1/cases/{cid}/transfer", json={"agency": "Bộ Y tế"}, headers=admin)
    assert r.status_code == 200
    moved = r.json()
    assert moved["state"] == "transferred" and moved["agency_code"] == "BYT" and moved["assignee"] is None
    r = service.client.post(f"/api/v1/cases/{cid}/accept-transfer", headers=service.headers("handler", "BYT"))
    assert r.status_code == 200 and r.json()["state"] == "triaged"
