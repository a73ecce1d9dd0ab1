"""The whole two-way flow of issue 22 in one real browser (headless Chromium against `triage serve`).

An earlier question on the same procedure is answered and published through the API. A citizen files a
question with a photo and a PDF and consents to publication; a clerk returns it; the citizen adds the
information through the follow-up link; the handler answers from a draft citing the earlier answer;
the citizen rates it "not solved" and the case reopens; the handler answers again and publishes; a
second citizen typing the same question sees it among "Câu hỏi tương tự đã được trả lời", with
JavaScript (the debounced list) and without ("Kiểm tra trước khi gửi"). Screenshots: two-way-*.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.web.test_e2e import PASSWORD, Live, live  # noqa: F401 - the live service fixture
from tests.triage.store.test_files import jpeg_with_gps
from triage.store.repositories import Submissions
from triage.store.tables import Submission

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
LAW = "Nghị định số 15/2021/NĐ-CP"
EARLIER_ANSWER = (
    f"Theo {LAW}, hồ sơ đề nghị cấp giấy phép xây dựng nhà ở riêng lẻ gồm đơn đề nghị, bản sao giấy tờ "
    "về quyền sử dụng đất và hai bộ bản vẽ thiết kế; nộp tại bộ phận một cửa cấp huyện, thời hạn 15 ngày."
)


class Api:
    """The live service's JSON API with one staff account's bearer token."""

    def __init__(self, srv: Live, role: str, agency: str | None = None) -> None:
        self.base = srv.url + "/api/v1"
        self.username = srv.user(role, agency)
        r = httpx.post(self.base + "/auth/token", data={"username": self.username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = httpx.post(self.base + path, json=body, headers=self.headers, timeout=60)
        assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text}"
        return dict(r.json())

    def case(self, case_id: int) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/cases/{case_id}", headers=self.headers, timeout=60)
        assert r.status_code == 200, r.text
        return dict(r.json())


def _earlier_published_answer(srv: Live, clerk: Api, handler: Api, tag: str) -> tuple[int, int]:
    """(case id, published answer id) of an answered, published question on the same procedure."""
    sent = httpx.post(
        srv.url + "/api/v1/submissions",
        json={
            "kind": "kien_nghi",
            "submitter_type": "citizen",
            "title": f"Hồ sơ xin cấp giấy phép xây dựng nhà ở riêng lẻ gồm những gì {tag}",
            "content": "Gia đình tôi sắp xây nhà ở riêng lẻ. Xin hỏi hồ sơ xin cấp giấy phép xây dựng gồm "
            "những giấy tờ gì, nộp ở đâu và bao lâu thì được cấp?",
            "publish_consent": True,
        },
        timeout=60,
    )
    assert sent.status_code == 201, sent.text
    code = sent.json()["tracking_code"]
    with srv.db.read() as s:
        sub = Submissions(s).by_tracking_code(code)
        assert sub is not None
        case_id = sub.case_id
    clerk.post(f"/cases/{case_id}/route", {"agency": "BXD"})
    handler.post(f"/cases/{case_id}/assign", {"assignee": handler.username})
    handler.post(f"/cases/{case_id}/start")
    assert handler.post(f"/cases/{case_id}/respond", {"body": EARLIER_ANSWER})["state"] == "responded"
    published = handler.post(f"/cases/{case_id}/publish")["answer"]
    return case_id, int(published["id"])


def test_file_return_follow_up_draft_not_solved_publish_and_similar_answered(live: Live, tmp_path: Path) -> None:  # noqa: F811
    p = live.page
    tag = "".join(secrets.choice("abcdeghklmnpqrstuvxy") for _ in range(6))  # letters: never masked
    clerk, handler_api = Api(live, "clerk"), Api(live, "handler", "BXD")

    # (0) An earlier question on the same procedure, answered and published (through the API).
    earlier_id, earlier_pub = _earlier_published_answer(live, clerk, handler_api, tag)
    assert httpx.get(f"{live.url}/api/v1/answers/{earlier_pub}").status_code == 200

    # (1) A citizen files the question with a photo and a PDF and consents to publication.
    photo, pdf = tmp_path / "anh-mat-bang.jpg", tmp_path / "ban-ve.pdf"
    photo.write_bytes(jpeg_with_gps())
    pdf.write_bytes(PDF)
    title = f"Thủ tục cấp giấy phép xây dựng nhà ở riêng lẻ cần giấy tờ gì {tag}"
    question = "Tôi muốn xây nhà ở riêng lẻ trên đất của gia đình. Thủ tục cấp giấy phép xây dựng cần giấy tờ gì?"
    p.logout()
    p.go("/")
    p.choose("kind", "kien_nghi")
    p.choose("submitter_type", "citizen")
    p.fill("title", title)
    p.fill("content", question)
    p.el("#files").send_keys(f"{photo}\n{pdf}")
    p.el("#publish_consent").click()
    assert p.el("#publish_consent").is_selected()
    p.check_and_shoot("two-way-01-form")
    p.submit("#submit-btn")
    code = p.text("#tracking-code")
    assert "2 tệp" in p.text("#attachment-count")
    link = p.el("#follow-up-link").get_attribute("href")
    assert link and f"/theo-doi/{code}?k=" in link
    with live.db.read() as s:
        sub = Submissions(s).by_tracking_code(code)
        assert sub is not None and sub.publish_consent is True
        case_id = sub.case_id

    # (2) A clerk sees both files and returns the case for more information.
    p.login(clerk.username, PASSWORD)
    p.go(f"/staff/cases/{case_id}")
    assert [a.text for a in p.els("a.attachment-link")] == ["anh-mat-bang.jpg", "ban-ve.pdf"]
    p.el("details.more-actions summary").click()
    p.fill("return_for_info-reason", "Vui lòng cho biết diện tích đất và số tầng dự kiến xây dựng.")
    p.submit("button[data-action=return_for_info]")
    assert p.text("#case-state") == "Chờ bổ sung thông tin"
    assert clerk.case(case_id)["state"] == "returned"

    # (3) The citizen adds the information through the secret link from the receipt.
    p.logout()
    p.d.get(link)
    assert "diện tích đất" in p.text("#return-reason")
    p.fill("text", "Diện tích đất 80 m2, dự kiến xây 3 tầng.")
    p.submit("#add-info-btn")
    assert "Đã gửi thông tin bổ sung" in p.text("#done")
    assert p.text("#status") == "Đã tiếp nhận"
    assert clerk.case(case_id)["state"] == "new"
    clerk.post(f"/cases/{case_id}/route", {"agency": "BXD"})

    # (4) The handler takes the case and answers from the draft, which cites the earlier answer.
    p.login(handler_api.username, PASSWORD)
    p.go(f"/staff/cases/{case_id}")
    assert "80 m2" in p.text("#followups")
    p.submit("button[data-action=take]")
    assert f"#{earlier_id} " in p.text("#draft-sources")
    assert LAW in p.text("#draft-legal")
    assert p.el("#respond-body").get_attribute("value") == ""  # nothing pre-filled until asked
    p.check_and_shoot("two-way-02-draft")
    p.submit("#use-draft")
    drafted = p.el("#respond-body").get_attribute("value") or ""
    assert "15/2021/NĐ-CP" in drafted
    p.el("#respond-body").send_keys("\nVới diện tích 80 m2, 3 tầng, ông/bà nộp hồ sơ tại UBND huyện.")
    p.submit("button[data-action=respond]")
    assert p.text("#case-state") == "Đã trả lời"
    answer = handler_api.case(case_id)
    assert answer["state"] == "responded"

    # (5) The citizen reads the answer, rates it "not solved": the case reopens.
    p.logout()
    p.d.get(link)
    first = p.text("#answer-1")
    assert "15/2021/NĐ-CP" in first and "UBND huyện" in first
    p.el("#rating-not_solved").click()
    p.fill("comment", "Tôi chưa rõ có cần bản vẽ do đơn vị có chứng chỉ thiết kế lập không.")
    p.check_and_shoot("two-way-03-rate")
    p.submit("#rate-btn")
    assert "Cảm ơn" in p.text("#done")
    assert p.text("#status") == "Đang xử lý"
    assert handler_api.case(case_id)["state"] == "in_progress"

    # (6) The handler answers again and publishes the answer.
    p.login(handler_api.username, PASSWORD)
    p.go(f"/staff/cases/{case_id}")
    sources = p.text("#draft-sources")
    assert f"#{earlier_id} " in sources and f"#{case_id} " not in sources  # never its own earlier answer
    again = "Nhà ở riêng lẻ dưới 7 tầng, tổng diện tích sàn dưới 250 m2: hộ gia đình tự lập bản vẽ được."
    p.fill("respond-body", again)
    p.submit("button[data-action=respond]")
    assert p.text("#case-state") == "Đã trả lời"
    assert "Người gửi đồng ý công khai" in p.text("#pub-state")
    p.submit("#publish-btn")
    assert "Đã công khai" in p.text("#pub-state")
    p.check_and_shoot("two-way-04-published")
    public = p.el("#pub-state a").get_attribute("href") or ""
    p.logout()
    p.d.get(public)
    assert "tự lập bản vẽ" in p.text("main") and "Diện tích đất 80 m2" not in p.text("main")

    # (7) A second citizen types the same question: the debounced list shows it ...
    p.go("/")
    p.fill("title", title)
    p.fill("content", question)
    p.wait.until(lambda d: title in p.el("#similar-answered").text and p.el("#similar-answered").is_displayed())
    assert "Câu hỏi tương tự đã được trả lời" in p.text("#similar-answered")
    links = {a.text: a.get_attribute("href") for a in p.els("#similar-answered li a")}
    assert links[title] == public
    p.check_and_shoot("two-way-05-similar-js")
    # ... and so does "Kiểm tra trước khi gửi" with JavaScript off, keeping what was typed, storing nothing.
    p.d.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        p.d.get("data:text/html,<title>off</title><script>document.title='on'</script>")
        assert p.d.title == "off"  # scripts really are off
        p.go("/")
        p.choose("kind", "kien_nghi")
        p.fill("title", title)
        p.fill("content", question)
        assert not p.el("#similar-answered").is_displayed()
        p.submit("#check-btn")
        assert title in p.text("#similar-answered")
        links = {a.text: a.get_attribute("href") for a in p.els("#similar-answered li a")}
        assert links[title] == public
        assert p.el("#title").get_attribute("value") == title
        p.check_and_shoot("two-way-06-similar-no-js")
    finally:
        p.d.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    with live.db.read() as s:
        assert s.query(Submission).filter(Submission.title == title).count() == 1  # only the first citizen's
