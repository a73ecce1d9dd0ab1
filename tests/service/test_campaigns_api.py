"""Campaigns over HTTP: near-identical submissions grouped at intake, listed, read and answered together."""

from __future__ import annotations

from datetime import timedelta

from tests.service.conftest import Service, unique
from triage.intake import NewSubmission, receive
from triage.store.models import utcnow


def petition(place: str, signer: str) -> NewSubmission:
    return NewSubmission(
        kind="kien_nghi",
        submitter_type="citizen",
        title=f"Đề nghị lắp đèn tín hiệu giao thông tại ngã tư {place}",
        content=(
            f"Người dân khu vực ngã tư {place} đề nghị lắp đặt đèn tín hiệu giao thông vì nơi đây thường xuyên "
            f"xảy ra va chạm vào giờ cao điểm, học sinh đi học rất nguy hiểm. Người gửi: {signer}."
        ),
    )


def stage_campaign(
    service: Service, n: int = 3, agency: str | None = "BTC", start: bool = True
) -> tuple[int, list[int]]:
    """``n`` copies of one petition through the real intake (encoder, case index, grouping); routed and started."""
    place = unique("Tổ dân phố số ")
    now = utcnow()
    ids = [
        receive(
            service.svc.db,
            petition(place, f"Người ký {i}"),
            pipeline=service.svc.pipeline,
            policy=service.svc.policy,
            now=now + timedelta(seconds=i),
        ).case_id
        for i in range(n)
    ]
    if agency is not None:
        handler = service.handler_name(agency)
        with service.work() as w:
            for cid in ids:
                w.route(cid, agency=agency)
                w.assign(cid, assignee=handler)
                if start:
                    w.start(cid)
    detail = service.client.get(f"/api/v1/cases/{ids[-1]}", headers=service.headers("admin")).json()
    assert detail["campaign_id"] is not None, detail
    return int(detail["campaign_id"]), ids


def test_campaign_is_listed_read_and_answered_once_for_all(service: Service) -> None:
    campaign_id, ids = stage_campaign(service, n=4)
    h = service.headers("admin")
    listed = service.client.get("/api/v1/campaigns", params={"limit": 200}, headers=h).json()
    assert listed["min_size"] == 3
    item = next(i for i in listed["items"] if i["id"] == campaign_id)
    assert item["size"] == 4 and item["open_cases"] == 4 and "Đề nghị lắp đèn" in item["title"]
    detail = service.client.get(f"/api/v1/campaigns/{campaign_id}", headers=h).json()
    assert [c["id"] for c in detail["cases"]] == ids and all(c["campaign_id"] == campaign_id for c in detail["cases"])
    case = service.client.get(f"/api/v1/cases/{ids[-1]}", headers=h).json()
    assert case["suggestion"]["likely_duplicate"] is True
    assert {s["case_id"] for s in case["suggestion"]["similar"]} >= set(ids[:3])
    r = service.client.post(
        f"/api/v1/campaigns/{campaign_id}/respond", json={"body": "Sở GTVT sẽ lắp đèn trong quý tới."}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"campaign_id": campaign_id, "responded": ids, "skipped": []}
    for cid in ids:
        timeline = service.client.get(f"/api/v1/cases/{cid}", headers=h).json()
        assert timeline["state"] == "responded"
        assert any(e["action"] == "respond" for e in timeline["timeline"])
    again = service.client.post(f"/api/v1/campaigns/{campaign_id}/respond", json={"body": "Lần hai."}, headers=h)
    assert again.status_code == 409 and "no case of campaign" in again.json()["detail"]


def test_campaign_bad_input_is_4xx(service: Service) -> None:
    h = service.headers("admin")
    assert service.client.get("/api/v1/campaigns/999999", headers=h).status_code == 404
    assert service.client.get("/api/v1/campaigns/0", headers=h).status_code == 422
    assert service.client.get("/api/v1/campaigns", params={"min_size": 1}, headers=h).status_code == 422
    r = service.client.post("/api/v1/campaigns/1/respond", json={"body": ""}, headers=h)
    assert r.status_code == 422
