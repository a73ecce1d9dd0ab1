"""Staff case views: filters, route confirmation and correction, statistics, escalation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from service.app import run_maintenance
from tests.service.conftest import BODY, Service, unique
from triage.cases.calendar import local_tz
from triage.cases.workflow import CaseState
from triage.store.tables import Event, ReviewedLabel


def at(day: str, hour: int = 9) -> datetime:
    """A moment on a Vietnamese calendar day (local 09:00 by default), as aware UTC."""
    d = date.fromisoformat(day)
    return datetime(d.year, d.month, d.day, hour, tzinfo=local_tz()).astimezone(UTC)


@pytest.fixture
def frozen(service: Service) -> Iterator[list[datetime]]:
    """Freeze the service's clock (tests move ``now[0]``); restored afterwards."""
    now = [at("2026-03-02")]
    previous = service.svc.clock
    service.svc.clock = lambda: now[0]
    yield now
    service.svc.clock = previous


def ids(service: Service, role: str = "clerk", **params: object) -> list[int]:
    r = service.client.get("/api/v1/cases", params=params, headers=service.headers(role))
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def test_filters(service: Service, frozen: list[datetime]) -> None:
    tag = unique("lọc-")
    old = service.case_in(CaseState.TRIAGED, agency="BTC", title=f"{tag} cũ", now=at("2026-01-05"))
    soon = service.case_in(CaseState.ASSIGNED, agency="BTC", title=f"{tag} sắp hạn", now=at("2026-02-05"))
    fresh = service.case_in(CaseState.NEW, kind="sang_kien", title=f"{tag} mới", now=at("2026-03-02"))
    other = service.case_in(CaseState.TRIAGED, agency="BYT", title=f"{tag} y tế", now=at("2026-03-02"))
    done = service.case_in(CaseState.CLOSED, agency="BTC", title=f"{tag} xong", now=at("2026-01-05"))
    q = {"q": tag}
    assert set(ids(service, **q)) == {old, soon, fresh, other, done}
    assert ids(service, **q, state="new") == [fresh]
    assert set(ids(service, **q, state=["triaged", "assigned"])) == {old, soon, other}
    assert set(ids(service, **q, agency="BTC")) == {old, soon, done}
    assert ids(service, **q, kind="sang_kien") == [fresh]
    assert ids(service, **q, overdue="true") == [old]  # done was also late, but it is closed
    assert ids(service, **q, due_soon="true") == [soon]
    statuses = {
        i["id"]: i["deadline_status"]
        for i in service.client.get("/api/v1/cases", params=q, headers=service.headers("clerk")).json()["items"]
    }
    assert statuses == {old: "overdue", soon: "due_soon", fresh: "on_track", other: "on_track", done: None}
    assert ids(service, **q, limit=2) == [other, fresh]  # newest first (same moment: higher id first)
    assert (
        service.client.get("/api/v1/cases", params={"state": "nope"}, headers=service.headers("clerk")).status_code
        == 422
    )


def test_text_search_ignores_case_and_treats_wildcards_literally(service: Service) -> None:
    tag = unique("TÌMKIẾM")
    cid = service.case_in(CaseState.NEW, content=f"Phản ánh về {tag} ĐƯỜNG NGẬP ở phường")
    assert ids(service, q=f"{tag.lower()} đường ngập") == [cid]
    assert ids(service, q="%_%" + tag) == []


def test_list_paginates_with_total(service: Service) -> None:
    tag = unique("trang-")
    made = [service.case_in(CaseState.NEW, title=f"{tag} {i}") for i in range(3)]
    r = service.client.get("/api/v1/cases", params={"q": tag, "limit": 2}, headers=service.headers("clerk")).json()
    r2 = service.client.get(
        "/api/v1/cases", params={"q": tag, "limit": 2, "offset": 2}, headers=service.headers("clerk")
    ).json()
    assert r["total"] == r2["total"] == 3
    assert sorted(i["id"] for i in r["items"] + r2["items"]) == sorted(made)


def labels(service: Service, case_id: int) -> list[ReviewedLabel]:
    with service.svc.db.read() as s:
        return list(s.scalars(select(ReviewedLabel).where(ReviewedLabel.case_id == case_id)))


def submitted_case(service: Service, **body: object) -> dict[str, object]:
    code = service.client.post("/api/v1/submissions", json={**BODY, **body}).json()["tracking_code"]
    items = service.client.get(
        "/api/v1/cases", params={"q": str(body.get("title", ""))}, headers=service.headers("clerk")
    )
    for item in items.json()["items"]:
        detail = service.client.get(f"/api/v1/cases/{item['id']}", headers=service.headers("clerk")).json()
        if detail["submissions"][0]["tracking_code"] == code:
            return dict(detail)
    raise AssertionError("submitted case not found")


def test_confirming_the_suggestion_stores_a_confirmed_label(service: Service) -> None:
    case = submitted_case(service, title=unique("Xác nhận tuyến "), content=BODY["content"] + " Gọi 0912345678.")
    suggestion = case["suggestion"]
    assert isinstance(suggestion, dict)
    top = suggestion["agencies"][0]["code"]
    r = service.client.post(f"/api/v1/cases/{case['id']}/route", json={"agency": top}, headers=service.headers("clerk"))
    assert r.status_code == 200 and r.json()["state"] == "triaged" and r.json()["agency_code"] == top
    [label] = labels(service, int(str(case["id"])))
    assert label.confirmed and label.agency_code == top == label.suggested_agency_code
    assert label.field == suggestion["fields"][0]["name"] and label.kind == "phan_anh"
    assert label.model_version == case["model_version"]
    assert "0912345678" not in label.text and "[SĐT]" in label.text
    event = r.json()["timeline"][-1]
    assert event["action"] == "triage" and event["after"]["confirmed"] is True
    assert event["model_version"] == case["model_version"]


def test_correcting_the_route_stores_the_correction(service: Service) -> None:
    case = submitted_case(service, title=unique("Sửa tuyến "))
    r = service.client.post(
        f"/api/v1/cases/{case['id']}/route",
        json={"agency": "Bộ Công Thương", "field": "Thương mại điện tử", "kind": "kien_nghi"},
        headers=service.headers("clerk"),
    )
    assert r.status_code == 200
    assert r.json()["agency_code"] == "BCT" and r.json()["kind"] == "kien_nghi"
    [label] = labels(service, int(str(case["id"])))
    assert not label.confirmed
    assert (label.agency_code, label.field, label.kind, label.suggested_agency_code) == (
        "BCT",
        "Thương mại điện tử",
        "kien_nghi",
        "BTC",
    )
    # routing again (TRIAGED -> TRIAGED) adds a second label: every decision is training data
    service.client.post(f"/api/v1/cases/{case['id']}/route", json={"agency": "BTC"}, headers=service.headers("clerk"))
    assert [lb.confirmed for lb in labels(service, int(str(case["id"])))] == [False, False]


def test_stats_on_a_constructed_history(service: Service, frozen: list[datetime]) -> None:
    agency = "BVHTTDL"  # no other test routes cases here
    handler = service.handler_name(agency)
    # Received in March 2026: three cases; one answered on time, one late, one still open and overdue.
    on_time = service.case_in(CaseState.TRIAGED, agency=agency, now=at("2026-03-02"))
    late = service.case_in(CaseState.TRIAGED, agency=agency, now=at("2026-03-03"))
    service.case_in(CaseState.TRIAGED, agency=agency, now=at("2026-03-04"))  # open, late by 31 March
    # Received in February, answered in March (counts as answered in March, not received).
    feb = service.case_in(CaseState.TRIAGED, agency=agency, now=at("2026-02-02"))
    # Rejected in March: neither answered nor backlog.
    rejected = service.case_in(CaseState.TRIAGED, agency=agency, now=at("2026-03-05"))
    for cid in (on_time, late, feb):
        with service.work(now=at("2026-03-05")) as w:
            w.assign(cid, assignee=handler)
            w.start(cid)
    with service.work(now=at("2026-03-10")) as w:
        w.respond(on_time, body="Trả lời đúng hạn.")
        w.respond(feb, body="Trả lời trễ cho hồ sơ tháng 2.")
        w.reject(rejected, reason="ngoài phạm vi")
    with service.work(now=at("2026-04-20")) as w:  # 2026-03-03 + 15 working days = 2026-03-24
        w.respond(late, body="Trả lời quá hạn.")
    frozen[0] = at("2026-05-10")
    r = service.client.get(
        "/api/v1/stats",
        params={"start": "2026-03-01", "end": "2026-03-31", "agency": agency},
        headers=service.headers("analyst"),
    )
    assert r.status_code == 200, r.text
    [row] = r.json()["agencies"]
    assert row["agency_code"] == agency and r.json()["as_of"] == "2026-03-31"
    # received: on_time, late, open_late, rejected; answered in March: on_time, feb (late: Feb 2 + 15 wd).
    assert (row["received"], row["answered"], row["answered_on_time"]) == (4, 2, 1)
    assert row["on_time_pct"] == 50.0
    # backlog at 31 March: late (answered in April) and open_late; both past 24/25 March.
    assert (row["backlog"], row["overdue"]) == (2, 2)
    april = service.client.get(
        "/api/v1/stats",
        params={"start": "2026-04-01", "end": "2026-04-30", "agency": agency},
        headers=service.headers("admin"),
    ).json()["agencies"][0]
    assert (april["received"], april["answered"], april["answered_on_time"], april["on_time_pct"]) == (0, 1, 0, 0.0)
    assert (april["backlog"], april["overdue"]) == (1, 1)
    bad = service.client.get(
        "/api/v1/stats", params={"start": "2026-04-30", "end": "2026-04-01"}, headers=service.headers("admin")
    )
    assert bad.status_code == 422


def test_periodic_job_escalates_newly_overdue_cases_once(service: Service, frozen: list[datetime]) -> None:
    overdue = service.case_in(CaseState.ASSIGNED, agency="BNV", now=at("2026-01-05"))
    fine = service.case_in(CaseState.ASSIGNED, agency="BNV", now=at("2026-03-02"))

    def escalations(cid: int) -> list[tuple[str, dict[str, object] | None]]:
        with service.svc.db.read() as s:
            events = s.scalars(select(Event).where(Event.case_id == cid, Event.action == "escalate"))
            return [(e.actor, e.after) for e in events]

    run_maintenance(service.svc)
    run_maintenance(service.svc)
    [(actor, after)] = escalations(overdue)
    assert actor == "system" and after is not None and after["deadline"] == "answer"
    assert isinstance(after["working_days_overdue"], int) and after["working_days_overdue"] > 0
    assert escalations(fine) == []
    frozen[0] = at("2026-04-01")  # now the second one is late too; the first is not escalated again
    run_maintenance(service.svc)
    assert len(escalations(overdue)) == 1 and len(escalations(fine)) == 1


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("get", "/api/v1/cases/99999999999999999999", None, 422),
        ("post", "/api/v1/cases/99999999999999999999/start", None, 422),
        ("get", "/api/v1/cases", {"offset": 10**30}, 422),
        ("get", "/api/v1/cases", {"q": "a\x00b"}, 400),
        ("get", "/api/v1/track/PAKN%00", None, 400),
        ("get", "/api/v1/stats", {"start": "9999-12-31", "end": "9999-12-31"}, 422),
    ],
)
def test_out_of_range_input_is_4xx_not_5xx(
    service: Service, method: str, path: str, params: dict[str, object] | None, status: int
) -> None:
    """Found by fuzzing: numbers past the database's integers, NUL bytes (PostgreSQL text refuses them)."""
    r = service.client.request(method, path, params=params, headers=service.headers("admin"))
    assert r.status_code == status, r.text


def test_nul_in_credentials_is_401(service: Service) -> None:
    r = service.client.post("/api/v1/auth/token", data={"username": "a\x00b", "password": "x\x00y"})
    assert r.status_code == 401
