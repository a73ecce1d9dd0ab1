"""Programme fields (Resolution-57 task groups) through the JSON API: intake, case views, filters, stats, /route."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from tests.service.conftest import BODY, Service, unique
from triage.cases.calendar import local_tz
from triage.cases.workflow import CaseState
from triage.store.tables import Case

DIGITAL = {
    "kind": "kien_nghi",
    "content": "Nộp hồ sơ trên Cổng dịch vụ công quốc gia bị lỗi thanh toán trực tuyến, ứng dụng VNeID cũng không "
    "đăng nhập được để xác thực tài khoản định danh điện tử.",
}
EVERYDAY = {"content": "Đường vào thôn bị sạt lở sau mưa lũ, xe máy không đi được, đề nghị xã sớm sửa chữa."}


def at(day: str, hour: int = 9) -> datetime:
    d = date.fromisoformat(day)
    return datetime(d.year, d.month, d.day, hour, tzinfo=local_tz()).astimezone(UTC)


@pytest.fixture
def frozen(service: Service) -> Iterator[list[datetime]]:
    now = [at("2031-06-02")]
    previous = service.svc.clock
    service.svc.clock = lambda: now[0]
    yield now
    service.svc.clock = previous


def listed(service: Service, **params: object) -> list[dict[str, object]]:
    r = service.client.get("/api/v1/cases", params=params, headers=service.headers("clerk"))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def set_field(service: Service, case_id: int, code: str | None) -> None:
    with service.svc.db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.programme_field = code


def test_intake_suggests_and_stores_the_programme_field(service: Service) -> None:
    tag = unique("NQ57-")
    for body in (DIGITAL, EVERYDAY):
        r = service.client.post("/api/v1/submissions", json={**BODY, **body, "title": f"{tag} {body['content'][:30]}"})
        assert r.status_code == 201, r.text
    items = {i["programme_field"]: i for i in listed(service, q=tag)}
    assert set(items) == {"digital_government", "other"}
    assert items["digital_government"]["programme_field_name"] == "Chuyển đổi số trong cơ quan nhà nước"
    assert items["other"]["programme_field_name"] == "Khác"
    detail = service.client.get(
        f"/api/v1/cases/{items['digital_government']['id']}", headers=service.headers("clerk")
    ).json()
    ranked = detail["suggestion"]["programme_fields"]
    assert [f["code"] for f in ranked][:1] == ["digital_government"] and len(ranked) == 3
    assert ranked[0]["score"] >= ranked[1]["score"] and detail["programme_field"] == "digital_government"
    submit = next(e for e in detail["timeline"] if e["action"] == "submit")
    assert submit["after"]["suggested_programme_field"] == "digital_government"
    # The filter: one code, combined with the others; an unknown code is a 422 naming the known ones.
    assert [i["id"] for i in listed(service, q=tag, programme_field="other")] == [items["other"]["id"]]
    assert [i["id"] for i in listed(service, q=tag, programme_field="digital_government", state="new")] == [
        items["digital_government"]["id"]
    ]
    assert listed(service, q=tag, programme_field="international") == []
    bad = service.client.get("/api/v1/cases", params={"programme_field": "space"}, headers=service.headers("clerk"))
    assert bad.status_code == 422
    assert "unknown code 'space'" in bad.json()["detail"] and "digital_government" in bad.json()["detail"]


def test_cases_staged_without_models_have_no_programme_field(service: Service) -> None:
    cid = service.submit(title=unique("không mô hình "))
    detail = service.client.get(f"/api/v1/cases/{cid}", headers=service.headers("clerk")).json()
    assert detail["programme_field"] is None and detail["programme_field_name"] is None


def test_route_endpoint_gives_the_programme_field_beside_the_agencies(service: Service) -> None:
    r = service.client.post("/api/v1/route", json={"text": DIGITAL["content"], "top_k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["predictions"]) == 2
    assert body["programme_fields"][0]["code"] == "digital_government" and len(body["programme_fields"]) == 3
    assert body["programme_fields"][0]["name"] == "Chuyển đổi số trong cơ quan nhà nước"
    everyday = service.client.post("/api/v1/route", json={"text": EVERYDAY["content"]}).json()
    assert everyday["programme_fields"][0]["code"] == "other"


def test_stats_count_by_programme_field_and_filter_by_it(service: Service, frozen: list[datetime]) -> None:
    agency = "BDTTG"  # no other test routes cases here; June 2031 is used by no other test either
    handler = service.handler_name(agency)
    digital = [service.case_in(CaseState.TRIAGED, agency=agency, now=at("2031-06-02")) for _ in range(3)]
    talent = service.case_in(CaseState.TRIAGED, agency=agency, now=at("2031-06-03"))
    elsewhere = service.case_in(CaseState.TRIAGED, agency="BTC", now=at("2031-06-03"))
    for cid in digital:
        set_field(service, cid, "digital_government")
    set_field(service, talent, "human_resources")
    set_field(service, elsewhere, "digital_government")
    with service.work(now=at("2031-06-04")) as w:
        w.assign(digital[0], assignee=handler)
        w.start(digital[0])
        w.respond(digital[0], body="Đã khắc phục lỗi cổng dịch vụ công.")
    frozen[0] = at("2031-07-10")
    period = {"start": "2031-06-01", "end": "2031-06-30"}

    def stats(**params: str) -> dict[str, object]:
        r = service.client.get("/api/v1/stats", params={**period, **params}, headers=service.headers("analyst"))
        assert r.status_code == 200, r.text
        return dict(r.json())

    everything = stats()
    rows = {row["code"]: row for row in everything["programme_fields"]}  # type: ignore[attr-defined]
    assert list(rows)[:7] == [
        "institutions", "infrastructure", "human_resources", "digital_government", "enterprise_innovation",
        "international", "other",
    ]  # fmt: skip
    assert (rows["digital_government"]["received"], rows["digital_government"]["answered"]) == (4, 1)
    assert rows["digital_government"]["name"] == "Chuyển đổi số trong cơ quan nhà nước"
    assert rows["human_resources"]["received"] == 1 and rows["institutions"]["received"] == 0
    # Narrowed to one agency, and to one programme field (both tables).
    mine = {row["code"]: row["received"] for row in stats(agency=agency)["programme_fields"]}  # type: ignore[attr-defined]
    assert mine["digital_government"] == 3 and mine["human_resources"] == 1
    only = stats(programme_field="digital_government")
    assert only["programme_field"] == "digital_government"
    assert [row["code"] for row in only["programme_fields"]] == ["digital_government"]  # type: ignore[attr-defined]
    agencies = {row["agency_code"]: row for row in only["agencies"]}  # type: ignore[attr-defined]
    assert agencies[agency]["received"] == 3 and agencies["BTC"]["received"] == 1
    assert agencies[agency]["backlog"] == 2 and agencies[agency]["answered"] == 1
    talent_only = stats(agency=agency, programme_field="human_resources")
    assert [row["received"] for row in talent_only["agencies"]] == [1]  # type: ignore[attr-defined]
    bad = service.client.get(
        "/api/v1/stats", params={**period, "programme_field": "vũ trụ"}, headers=service.headers("analyst")
    )
    assert bad.status_code == 422 and "unknown code" in bad.json()["detail"]


def test_a_clerk_corrects_the_programme_field_when_routing(service: Service) -> None:
    tag = unique("sửa-nhóm-")
    r = service.client.post("/api/v1/submissions", json={**BODY, **DIGITAL, "title": tag})
    assert r.status_code == 201, r.text
    [item] = listed(service, q=tag)
    cid, clerk = item["id"], service.headers("clerk")
    assert item["programme_field"] == "digital_government"
    bad = service.client.post(
        f"/api/v1/cases/{cid}/route", json={"agency": "BCA", "programme_field": "space"}, headers=clerk
    )
    assert bad.status_code == 422 and "unknown code 'space'" in bad.json()["detail"]
    assert service.state_of(int(str(cid))) == CaseState.NEW  # nothing changed
    r = service.client.post(
        f"/api/v1/cases/{cid}/route", json={"agency": "BCA", "programme_field": "infrastructure"}, headers=clerk
    )
    assert r.status_code == 200, r.text
    assert r.json()["programme_field"] == "infrastructure"
    assert r.json()["programme_field_name"] == "Đầu tư, hạ tầng khoa học, công nghệ và số"
    triage = [e for e in r.json()["timeline"] if e["action"] == "triage"][-1]["after"]
    assert triage["programme_field"] == "infrastructure" and triage["previous_programme_field"] == "digital_government"
    assert triage["suggested_programme_field"] == "digital_government"
    # Routing again without a programme field keeps the clerk's choice.
    again = service.client.post(f"/api/v1/cases/{cid}/route", json={"agency": "BCA"}, headers=clerk)
    assert again.status_code == 200 and again.json()["programme_field"] == "infrastructure"
    assert [i["id"] for i in listed(service, q=tag, programme_field="infrastructure")] == [cid]
