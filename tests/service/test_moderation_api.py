"""Moderation flags through HTTP on SQLite and PostgreSQL: shown in the case detail, filtered in the
list, confirmed or dismissed by a clerk (audited, nothing deleted), and visible on the web pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.service.conftest import BODY, Service, unique
from tests.service.web.test_pages import browser
from triage.nlp.moderation import Moderator

RUDE = (
    "@Ngoc Quynh Nhu Nguyen Nó góp ý thì có ngon vào thẳng Facebook Linda mà góp, đm góp trên đây cho cha mẹ "
    "nó đọc hả gì. Thứ ngu mà đéo biết nhận xét"
)


@pytest.fixture(scope="module")
def moderated(service: Service, small_moderator: Moderator) -> Iterator[Service]:
    """The running service with a moderator in its pipeline (removed again after this module)."""
    before = service.svc.pipeline.moderator
    service.svc.pipeline.moderator = small_moderator
    yield service
    service.svc.pipeline.moderator = before


def submit(service: Service, content: str) -> tuple[int, str]:
    title = unique("Bình luận kiểm duyệt ")
    r = service.client.post("/api/v1/submissions", json={**BODY, "title": title, "content": content})
    assert r.status_code == 201, r.text
    cid = service.client.get("/api/v1/cases", params={"q": title}, headers=service.headers("admin")).json()["items"]
    assert len(cid) == 1
    return int(cid[0]["id"]), title


def detail(service: Service, cid: int, role: str = "clerk") -> dict[str, Any]:
    r = service.client.get(f"/api/v1/cases/{cid}", headers=service.headers(role))
    assert r.status_code == 200, r.text
    return dict(r.json())


def listed(service: Service, title: str, flagged: bool) -> list[int]:
    r = service.client.get("/api/v1/cases", params={"q": title, "flagged": flagged}, headers=service.headers("clerk"))
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


def test_flag_in_detail_timeline_and_list_filter(moderated: Service) -> None:
    rude, rude_title = submit(moderated, RUDE)
    fine, fine_title = submit(moderated, BODY["content"])
    case = detail(moderated, rude)
    mod = case["suggestion"]["moderation"]
    assert mod["flagged"] is True and "abuse" in mod["reasons"] and mod["abuse"] >= 0.5 and mod["decision"] is None
    assert case["flagged"] is True
    submit_event = case["timeline"][0]
    assert submit_event["action"] == "submit" and submit_event["after"]["moderation"]["flagged"] is True
    assert detail(moderated, fine)["suggestion"]["moderation"]["flagged"] is False
    assert listed(moderated, rude_title, True) == [rude] and listed(moderated, rude_title, False) == []
    assert listed(moderated, fine_title, False) == [fine] and listed(moderated, fine_title, True) == []
    all_flagged = moderated.client.get(
        "/api/v1/cases", params={"flagged": "true", "limit": 200}, headers=moderated.headers("clerk")
    )
    assert rude in {i["id"] for i in all_flagged.json()["items"]}
    assert all(i["flagged"] for i in all_flagged.json()["items"])


def test_clerk_dismisses_and_admin_confirms_audited(moderated: Service) -> None:
    cid, title = submit(moderated, RUDE)
    r = moderated.client.post(
        f"/api/v1/cases/{cid}/moderation",
        json={"decision": "dismiss", "note": "từ ngữ nặng nhưng vẫn là góp ý"},
        headers=moderated.headers("clerk"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    mod = body["suggestion"]["moderation"]
    assert mod["flagged"] is False and mod["model_flagged"] is True and mod["decision"] == "dismiss"
    assert body["flagged"] is False and body["state"] == "new"  # nothing hidden, nothing moved
    event = body["timeline"][-1]
    assert event["action"] == "moderate" and event["actor"] == moderated.user("clerk")[1].username
    assert event["before"]["flagged"] is True and event["after"]["flagged"] is False
    assert event["after"]["decision"] == "dismiss" and event["after"]["note"] == "từ ngữ nặng nhưng vẫn là góp ý"
    assert listed(moderated, title, False) == [cid] and listed(moderated, title, True) == []

    again = moderated.client.post(
        f"/api/v1/cases/{cid}/moderation", json={"decision": "dismiss"}, headers=moderated.headers("clerk")
    )
    assert again.status_code == 409 and "no moderation flag" in again.json()["detail"]
    r = moderated.client.post(
        f"/api/v1/cases/{cid}/moderation", json={"decision": "confirm"}, headers=moderated.headers("admin")
    )
    assert r.status_code == 200 and r.json()["suggestion"]["moderation"]["flagged"] is True
    assert listed(moderated, title, True) == [cid]
    case = detail(moderated, cid)
    # (a "campaign" event may sit between them: the tests submit the same rude text more than once)
    assert [e["action"] for e in case["timeline"] if e["action"] != "campaign"] == ["submit", "moderate", "moderate"]
    assert len(case["submissions"]) == 1 and case["submissions"][0]["content"] == RUDE  # kept exactly


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"decision": "delete"}, 422),
        ({}, 422),
        ({"decision": "confirm", "hide": True}, 422),
        ({"decision": "confirm", "note": "x" * 5000}, 422),
    ],
)
def test_bad_bodies_are_422(moderated: Service, body: dict[str, Any], status: int) -> None:
    cid, _ = submit(moderated, RUDE)
    r = moderated.client.post(f"/api/v1/cases/{cid}/moderation", json=body, headers=moderated.headers("clerk"))
    assert r.status_code == status, r.text
    assert detail(moderated, cid)["suggestion"]["moderation"]["decision"] is None


def test_unscreened_case_and_missing_case(moderated: Service) -> None:
    cid = moderated.submit(title=unique("Chưa sàng lọc "))  # staged without the models: no suggestion
    r = moderated.client.post(
        f"/api/v1/cases/{cid}/moderation", json={"decision": "confirm"}, headers=moderated.headers("clerk")
    )
    assert r.status_code == 409 and "not been screened" in r.json()["detail"]
    r = moderated.client.post(
        "/api/v1/cases/999999/moderation", json={"decision": "confirm"}, headers=moderated.headers("clerk")
    )
    assert r.status_code == 404


def test_list_filter_rejects_non_boolean(moderated: Service) -> None:
    r = moderated.client.get("/api/v1/cases", params={"flagged": "maybe"}, headers=moderated.headers("clerk"))
    assert r.status_code == 422


# ---- web pages -------------------------------------------------------------------------------------

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_inbox_badge_and_case_page_buttons(moderated: Service) -> None:
    cid, _ = submit(moderated, RUDE)
    clerk = browser(moderated, "clerk")
    inbox = clerk.get("/staff/inbox")
    assert inbox.status_code == 200
    card = inbox.text.split(f'id="case-{cid}"', 1)[1].split("</li>", 1)[0]
    assert "⚑ Gắn cờ" in card and "Ngôn từ xúc phạm / thù ghét" in inbox.text
    page = clerk.get(f"/staff/cases/{cid}")
    assert "Kiểm duyệt nội dung" in page.text and "Xác nhận cờ" in page.text and "Bỏ cờ" in page.text
    assert "hồ sơ không bị ẩn hay xóa" in page.text
    token = TOKEN.search(page.text)
    assert token
    r = clerk.post(
        f"/staff/cases/{cid}/act/moderate_dismiss",
        data={"csrf_token": token.group(1), "note": "không xúc phạm ai"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    after = clerk.get(f"/staff/cases/{cid}")
    assert "Cờ đã được bỏ." in after.text and "bỏ cờ kiểm duyệt" in after.text
    assert 'data-action="moderate_dismiss"' not in after.text and 'data-action="moderate_confirm"' in after.text
    assert detail(moderated, cid)["suggestion"]["moderation"]["decision"] == "dismiss"


def test_analyst_sees_the_flag_but_no_buttons(moderated: Service) -> None:
    cid, _ = submit(moderated, RUDE)
    page = browser(moderated, "analyst").get(f"/staff/cases/{cid}")
    assert page.status_code == 200 and "Đang gắn cờ" in page.text
    assert 'data-action="moderate_confirm"' not in page.text and 'data-action="moderate_dismiss"' not in page.text
