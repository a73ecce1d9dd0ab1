"""Public answers and answer drafts through the real app on SQLite and PostgreSQL: consent, scope and
masking when publishing, /hoi-dap search and pages, the similar-answered endpoint (rate-limited), the
no-JavaScript "check before sending" step, and the handler's draft citing its sources."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from tests.service.conftest import Service, unique
from tests.service.web.test_pages import browser, csrf, valid_form
from triage.cases.intake import NewSubmission, receive
from triage.cases.throttle import SharedTokenBucket
from triage.store.outbox_tables import PublishedAnswer
from triage.store.tables import Event

PII_QUESTION = (
    "Tôi là Nguyễn Văn Bình, số điện thoại 0987 654 321. Xin hỏi thủ tục cấp giấy phép khai thác nước ngầm "
    "cho hộ gia đình {tag} cần những giấy tờ gì?"
)
ANSWER = (
    "Theo Nghị định số 02/2023/NĐ-CP, hồ sơ cấp giấy phép khai thác nước ngầm gồm đơn đề nghị và sơ đồ khu vực. "
    "Ông Nguyễn Văn Bình liên hệ 0987 654 321 để được hướng dẫn."
)


def _answered(service: Service, *, consent: bool, agency: str = "BNNMT", tag: str = "") -> int:
    receipt = receive(
        service.svc.db,
        NewSubmission(
            kind="kien_nghi",
            submitter_type="citizen",
            title=f"Giấy phép khai thác nước ngầm {tag}",
            content=PII_QUESTION.format(tag=tag),
            contact_email="binh@example.vn",
            publish_consent=consent,
        ),
        policy=service.svc.policy,
    )
    handler = service.handler_name(agency)
    with service.work() as w:
        w.route(receipt.case_id, agency=agency)
        w.assign(receipt.case_id, assignee=handler)
        w.start(receipt.case_id)
        w.respond(receipt.case_id, body=ANSWER)
    return receipt.case_id


def test_publishing_needs_consent_an_answer_and_the_cases_agency_and_masks_personal_data(service: Service) -> None:
    tag = unique("giếng-")
    case_id = _answered(service, consent=True, tag=tag)
    api = service.client
    assert api.post(f"/api/v1/cases/{case_id}/publish", headers=service.headers("handler", "BYT")).status_code == 404
    assert api.post(f"/api/v1/cases/{case_id}/publish", headers=service.headers("clerk")).status_code == 403
    assert api.post(f"/api/v1/cases/{case_id}/publish").status_code == 401
    r = api.post(f"/api/v1/cases/{case_id}/publish", headers=service.headers("handler", "BNNMT"))
    assert r.status_code == 200, r.text
    published = r.json()["answer"]
    for text in (published["question"], published["answer"]):
        assert "0987 654 321" not in text and "Nguyễn Văn Bình" not in text
    assert "[SĐT]" in published["question"] and "02/2023/NĐ-CP" in published["answer"]
    again = api.post(f"/api/v1/cases/{case_id}/publish", headers=service.headers("admin"))
    assert again.status_code == 409
    with service.svc.db.read() as s:
        actions = list(s.scalars(select(Event.action).where(Event.case_id == case_id)))
    assert "publish" in actions
    # searchable in the JSON API and on /hoi-dap (server-side, no script)
    found = api.get("/api/v1/answers", params={"q": f"khai thác nước ngầm {tag}"}).json()
    assert found["total"] >= 1 and found["items"][0]["id"] == published["id"]
    page = api.get("/hoi-dap", params={"q": "giấy phép khai thác nước ngầm"})
    assert page.status_code == 200 and f'href="/hoi-dap/{published["id"]}"' in page.text
    detail = api.get(f"/hoi-dap/{published['id']}")
    assert detail.status_code == 200 and "0987 654 321" not in detail.text and "[SĐT]" in html.unescape(detail.text)
    # withdrawn: gone from the list and the page, audited
    assert (
        api.delete(f"/api/v1/cases/{case_id}/publish", headers=service.headers("handler", "BNNMT")).status_code == 200
    )
    assert published["id"] not in [a["id"] for a in api.get("/api/v1/answers", params={"q": tag}).json()["items"]]
    assert api.get(f"/hoi-dap/{published['id']}").status_code == 404
    assert api.get(f"/api/v1/answers/{published['id']}").status_code == 404
    with service.svc.db.read() as s:
        assert "unpublish" in list(s.scalars(select(Event.action).where(Event.case_id == case_id)))


def test_no_consent_or_no_answer_cannot_be_published(service: Service) -> None:
    refused = _answered(service, consent=False, tag=unique("không-đồng-ý-"))
    r = service.client.post(f"/api/v1/cases/{refused}/publish", headers=service.headers("admin"))
    assert r.status_code == 409 and "consent" in r.json()["detail"]
    open_case = service.case_in("in_progress", agency="BTC")
    r = service.client.post(f"/api/v1/cases/{open_case}/publish", headers=service.headers("admin"))
    assert r.status_code == 409 and "answered" in r.json()["detail"]
    with service.svc.db.read() as s:
        assert s.scalar(select(PublishedAnswer).where(PublishedAnswer.case_id.in_([refused, open_case]))) is None


def test_consent_is_recorded_from_the_api_and_defaults_to_no(service: Service) -> None:
    body = {
        "kind": "phan_anh",
        "submitter_type": "citizen",
        "title": "Đường hỏng",
        "content": "Đường làng bị hỏng nặng.",
    }
    yes = service.client.post("/api/v1/submissions", json={**body, "publish_consent": True})
    no = service.client.post("/api/v1/submissions", json=body)
    assert yes.status_code == no.status_code == 201
    from triage.store.repositories import Submissions

    with service.svc.db.read() as s:
        assert Submissions(s).by_tracking_code(yes.json()["tracking_code"]).publish_consent is True  # type: ignore[union-attr]
        assert Submissions(s).by_tracking_code(no.json()["tracking_code"]).publish_consent is False  # type: ignore[union-attr]


def test_similar_answered_while_typing_and_without_javascript(service: Service) -> None:
    tag = unique("trạm-bơm-")
    case_id = _answered(service, consent=True, tag=tag)
    assert service.client.post(f"/api/v1/cases/{case_id}/publish", headers=service.headers("admin")).status_code == 200
    typed = "Cho hỏi giấy phép khai thác nước ngầm cho gia đình cần giấy tờ gì"
    r = service.client.get("/api/v1/answers/similar", params={"q": typed})
    assert r.status_code == 200 and any(tag in a["title"] for a in r.json()["items"])
    unrelated = service.client.get("/api/v1/answers/similar", params={"q": "học bổng du học ngành y khoa"})
    assert all(tag not in a["title"] for a in unrelated.json()["items"])
    # "Kiểm tra trước khi gửi": the form again with the list, every value kept, nothing stored
    client = browser(service)
    token = csrf(client, "/")
    form = valid_form(token, form_id="k" * 20, title=typed, content=typed + " ạ?", publish_consent="1", step="check")
    page = client.post("/", data=form)
    assert page.status_code == 200 and "Câu hỏi tương tự đã được trả lời" in page.text
    assert tag in html.unescape(page.text)
    text = html.unescape(page.text)
    assert typed + " ạ?" in text and 'value="0912 345 678"' in page.text
    assert re.search(r'id="publish_consent"[^>]*checked', page.text)
    from triage.store.repositories import Submissions

    with service.svc.db.read() as s:
        assert Submissions(s).by_idempotency_key("web-" + "k" * 20) is None
    # rate-limited like /api/v1/similar
    saved = service.svc.text_limiter
    service.svc.text_limiter = SharedTokenBucket(service.svc.db, per_minute=1, burst=1, prefix=unique("t"))
    try:
        assert service.client.get("/api/v1/answers/similar", params={"q": typed}).status_code == 200
        limited = service.client.get("/api/v1/answers/similar", params={"q": typed})
        assert limited.status_code == 429 and "Retry-After" in limited.headers
    finally:
        service.svc.text_limiter = saved


def test_handler_sees_a_draft_citing_answered_cases_and_uses_it_only_on_request(service: Service) -> None:
    tag = unique("hồ-sơ-nước-")
    sources = [_answered(service, consent=False, agency="BXD", tag=tag) for _ in range(2)]
    other_agency = _answered(service, consent=False, agency="BYT", tag=tag)
    case_id = service.case_in(
        "in_progress",
        agency="BXD",
        title="Hỏi về giấy phép khai thác nước ngầm",
        content="Gia đình tôi muốn khoan giếng, thủ tục cấp giấy phép khai thác nước ngầm cần giấy tờ gì?",
    )
    client = browser(service, "handler", "BXD")
    page = client.get(f"/staff/cases/{case_id}")
    assert page.status_code == 200 and 'id="draft"' in page.text
    cited = {
        int(x)
        for x in re.findall(
            r'<a href="/staff/cases/(\d+)">#\d+', page.text.split('id="draft-sources"')[1].split("</ol>")[0]
        )
    }
    assert cited and cited <= set(sources)  # its agency's answered cases only: never another agency's
    assert other_agency not in cited
    assert "Nghị định số 02/2023/NĐ-CP" in page.text  # the legal document the sources cite
    body = re.search(r'<textarea id="respond-body"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert body is not None and body.group(1) == ""  # not pre-filled until asked
    used = client.get(f"/staff/cases/{case_id}", params={"draft": 1})
    body = re.search(r'<textarea id="respond-body"[^>]*>(.*?)</textarea>', used.text, re.S)
    assert body is not None and "khai thác nước ngầm" in html.unescape(body.group(1))
    assert service.state_of(case_id) == "in_progress"  # shown and pre-filled, never sent
