"""The citizen channel through HTTP: files with a submission, who may read them, the follow-up link,
rating, place, and Open311 GeoReport v2 (the published response shapes)."""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image

from tests.service.conftest import BODY, Service
from tests.triage.store.test_files import GPS_IFD, bomb_png, jpeg_with_gps
from triage.store.tables import Event

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def submit_with_files(service: Service, files: list[tuple[str, bytes, str]], **body: Any) -> Any:
    payload = {**BODY, **body}
    parts = [("files", (name, data, declared)) for name, data, declared in files]
    return service.client.post("/api/v1/submissions/with-files", data={"submission": json.dumps(payload)}, files=parts)


def events(service: Service, case_id: int, action: str) -> list[Event]:
    with service.svc.db.read() as s:
        return list(s.query(Event).filter(Event.case_id == case_id, Event.action == action).order_by(Event.seq))


def case_of(service: Service, code: str) -> int:
    r = service.client.get(f"/api/v1/cases?q={code}", headers=service.headers("admin"))
    from triage.store.repositories import Submissions

    with service.svc.db.read() as s:
        sub = Submissions(s).by_tracking_code(code)
        assert sub is not None, r.text
        return sub.case_id


def test_files_are_checked_stored_and_served_to_staff_only(service: Service) -> None:
    r = submit_with_files(
        service, [("anh-hien-truong.jpg", jpeg_with_gps(), "image/jpeg"), ("don.pdf", PDF, "application/pdf")]
    )
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert len(receipt["attachments"]) == 2 and receipt["follow_up_secret"]
    cid = case_of(service, receipt["tracking_code"])
    (submit,) = events(service, cid, "submit")
    assert submit.after is not None
    digests = [f["sha256"] for f in submit.after["attachments"]]
    assert len(digests) == 2 and all(len(d) == 64 for d in digests)

    listing = service.client.get(f"/api/v1/cases/{cid}/files", headers=service.headers("clerk"))
    assert listing.status_code == 200, listing.text
    files = listing.json()
    assert [f["media_type"] for f in files] == ["image/jpeg", "application/pdf"]
    assert [f["sha256"] for f in files] == digests
    photo = service.client.get(f"/api/v1/cases/{cid}/files/{files[0]['id']}", headers=service.headers("clerk"))
    assert photo.status_code == 200
    assert photo.headers["content-disposition"].startswith("attachment;")
    assert photo.headers["x-content-type-options"] == "nosniff"
    with Image.open(io.BytesIO(photo.content)) as im:
        assert not im.getexif().get_ifd(GPS_IFD) and not im.getexif()
    pdf = service.client.get(f"/api/v1/cases/{cid}/files/{files[1]['id']}", headers=service.headers("admin"))
    assert pdf.content == PDF

    # Never to anyone without an account, never to an analyst, not to another agency's handler.
    url = f"/api/v1/cases/{cid}/files/{files[0]['id']}"
    assert service.client.get(url).status_code == 401
    assert service.client.get(url, headers=service.headers("analyst")).status_code == 403
    assert service.client.get(f"/api/v1/cases/{cid}/files", headers=service.headers("analyst")).status_code == 403
    with service.work() as w:
        w.route(cid, agency="BTC")
    assert service.client.get(url, headers=service.headers("handler", "BYT")).status_code == 404
    assert service.client.get(url, headers=service.headers("handler", "BTC")).status_code == 200


def test_a_lying_file_refuses_the_submission_with_a_reason(service: Service) -> None:
    r = submit_with_files(service, [("bao-cao.pdf", b"<html><script>alert(1)</script>", "application/pdf")])
    assert r.status_code == 422, r.text
    assert "bao-cao.pdf" in r.json()["detail"] and "nội dung" in r.json()["detail"]


def test_a_decompression_bomb_is_refused(service: Service) -> None:
    r = submit_with_files(service, [("bom.png", bomb_png(30_000, 30_000), "image/png")])
    assert r.status_code == 422, r.text
    assert "điểm ảnh quá lớn" in r.json()["detail"]


def test_place_is_stored_and_checked(service: Service) -> None:
    place = {"ward": "P. Hoàn Kiếm", "address": "12 Tràng Tiền", "lat": 21.0245, "lon": 105.8572}
    r = service.client.post("/api/v1/submissions", json={**BODY, "province": "Hà Nội", "place": place})
    assert r.status_code == 201, r.text
    from triage.store.repositories import Submissions

    with service.svc.db.read() as s:
        sub = Submissions(s).by_tracking_code(r.json()["tracking_code"])
        assert sub is not None
        assert (sub.ward, sub.address, sub.latitude, sub.longitude) == (
            "Phường Hoàn Kiếm", "12 Tràng Tiền", 21.0245, 105.8572,
        )  # fmt: skip
    bad = service.client.post("/api/v1/submissions", json={**BODY, "place": {"lat": 95, "lon": 105}})
    assert bad.status_code == 422
    half = service.client.post("/api/v1/submissions", json={**BODY, "place": {"lat": 21.0}})
    assert half.status_code == 422 and "kinh độ" in half.json()["detail"]


def _follow(service: Service, code: str, secret: str, what: str = "", body: dict[str, Any] | None = None) -> Any:
    headers = {"X-Follow-Up-Secret": secret}
    if not what:
        return service.client.get(f"/api/v1/follow-up/{code}", headers=headers)
    return service.client.post(f"/api/v1/follow-up/{code}/{what}", json=body or {}, headers=headers)


def test_follow_up_flow_return_add_information_answer_rate_reopen(service: Service) -> None:
    r = service.client.post("/api/v1/submissions", json=BODY)
    code, secret = r.json()["tracking_code"], r.json()["follow_up_secret"]
    cid = case_of(service, code)
    assert _follow(service, code, "sai-bi-mat").status_code == 404
    assert _follow(service, code, secret).json()["can_add_information"] is False
    assert _follow(service, code, secret, "information", {"text": "Số hồ sơ 123"}).status_code == 409
    assert _follow(service, code, secret, "rating", {"rating": "solved"}).status_code == 409

    with service.work() as w:
        w.route(cid, agency="BTC")
        w.return_for_info(cid, reason="Thiếu số hồ sơ hoàn thuế")
    view = _follow(service, code, secret).json()
    assert view["status"] == "returned" and view["can_add_information"]
    r = _follow(service, code, secret, "information", {"text": "Số hồ sơ: HT-2026-0042"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "new"
    (resubmit,) = events(service, cid, "resubmit")
    assert resubmit.actor == "citizen" and resubmit.after and resubmit.after["deadline_rule"] == "restart"

    handler = service.handler_name("BTC")
    with service.work() as w:
        w.route(cid, agency="BTC")
        w.assign(cid, assignee=handler)
        w.start(cid)
        w.respond(cid, body="Cơ quan thuế đã hoàn thuế cho ông.")
    view = _follow(service, code, secret).json()
    assert view["can_rate"] and not view["can_withdraw"] and view["answers"][0]["body"].startswith("Cơ quan thuế")
    assert _follow(service, code, secret, "withdraw", {}).status_code == 409
    r = _follow(service, code, secret, "rating", {"rating": "not_solved", "comment": "Chưa nhận được tiền"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_progress"  # reopened: back to the handler
    assert r.json()["rating"] == "not_solved" and not r.json()["can_rate"]
    (reopen,) = events(service, cid, "reopen")
    assert reopen.actor == "citizen" and "chưa được giải quyết" in str(reopen.after)
    assert [e.after["rating"] for e in events(service, cid, "rate") if e.after] == ["not_solved"]
    with service.work() as w:
        w.respond(cid, body="Bổ sung: tiền đã chuyển ngày 5/3.")
    assert _follow(service, code, secret, "rating", {"rating": "solved"}).json()["rating"] == "solved"
    assert _follow(service, code, secret, "rating", {"rating": "partly"}).status_code == 409  # once per answer


def test_withdraw_closes_an_open_case(service: Service) -> None:
    r = service.client.post("/api/v1/submissions", json=BODY)
    code, secret = r.json()["tracking_code"], r.json()["follow_up_secret"]
    r = _follow(service, code, secret, "withdraw", {"reason": "Đã tự giải quyết"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    cid = case_of(service, code)
    (withdrawn,) = events(service, cid, "withdraw")
    assert withdrawn.actor == "citizen" and withdrawn.before and withdrawn.before["state"] == "new"
    assert service.client.get(f"/api/v1/track/{code}").json()["status"] == "closed"


def test_a_replayed_submission_gets_a_new_secret_and_the_old_one_stops(service: Service) -> None:
    key = {"Idempotency-Key": f"citizen-replay-{service.backend}"}
    first = service.client.post("/api/v1/submissions", json=BODY, headers=key).json()
    again = service.client.post("/api/v1/submissions", json=BODY, headers=key).json()
    assert again["tracking_code"] == first["tracking_code"]
    assert again["follow_up_secret"] and again["follow_up_secret"] != first["follow_up_secret"]
    assert _follow(service, first["tracking_code"], first["follow_up_secret"]).status_code == 404
    assert _follow(service, first["tracking_code"], again["follow_up_secret"]).status_code == 200


# ---- Open311 GeoReport v2 --------------------------------------------------------------------------
SERVICE_KEYS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
REQUEST_KEYS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
}  # fmt: skip


def test_open311_services_and_definition(service: Service) -> None:
    r = service.client.get("/open311/v2/services.json")
    assert r.status_code == 200
    services = r.json()
    assert [s["service_code"] for s in services] == ["phan_anh", "kien_nghi", "sang_kien", "giai_phap"]
    assert all(set(s) == SERVICE_KEYS and s["type"] in ("realtime", "batch", "blackbox") for s in services)
    d = service.client.get("/open311/v2/services/phan_anh.json").json()
    assert d["service_code"] == "phan_anh"
    for a in d["attributes"]:
        assert {"variable", "code", "datatype", "required", "datatype_description", "order", "description"} <= set(a)
    assert service.client.get("/open311/v2/services/khong-co.json").json()[0]["code"] == 404


def test_open311_round_trip(service: Service) -> None:
    form = {
        "service_code": "phan_anh",
        "lat": "21.0285",
        "long": "105.8542",
        "address_string": "Ngã tư Tràng Tiền - Hàng Bài",
        "email": "an.nguyen@example.vn",
        "first_name": "An",
        "last_name": "Nguyễn",
        "description": "Đèn tín hiệu giao thông hỏng. Gọi tôi 0912 345 678 nếu cần.",
        "attribute[province]": "Hà Nội",
    }
    r = service.client.post("/open311/v2/requests.json", data=form)
    assert r.status_code == 200, r.text
    (created,) = r.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    rid = created["service_request_id"]
    one = service.client.get(f"/open311/v2/requests/{rid}.json")
    assert one.status_code == 200
    (row,) = one.json()
    assert set(row) == REQUEST_KEYS
    assert row["service_request_id"] == rid and row["status"] == "open" and row["service_code"] == "phan_anh"
    assert (row["lat"], row["long"], row["address"]) == (21.0285, 105.8542, "Ngã tư Tràng Tiền - Hàng Bài")
    assert "0912" not in row["description"] and "Đèn tín hiệu" in row["description"]
    assert row["requested_datetime"].endswith("+07:00") and row["expected_datetime"]
    both = service.client.get("/open311/v2/requests.json", params={"service_request_id": f"{rid},PAKN-0000-0000-0000"})
    assert [x["service_request_id"] for x in both.json()] == [rid]

    cid = case_of(service, rid)
    with service.work() as w:
        w.reject(cid, reason="không thuộc phạm vi")
    assert service.client.get(f"/open311/v2/requests/{rid}.json").json()[0]["status"] == "closed"


def test_open311_errors_use_the_georeport_shape(service: Service) -> None:
    missing = service.client.get("/open311/v2/requests/PAKN-0000-0000-0000.json")
    assert missing.status_code == 404 and set(missing.json()[0]) == {"code", "description"}
    listing = service.client.get("/open311/v2/requests.json")
    assert listing.status_code == 403 and listing.json()[0]["code"] == 403  # no api_key configured: by id only
    bad = service.client.post("/open311/v2/requests.json", data={"service_code": "khong-co", "description": "x"})
    assert bad.status_code == 400 and bad.json()[0]["code"] == 400
    assert service.client.get("/open311/v2/services.xml").status_code == 400
