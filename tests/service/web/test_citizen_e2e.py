"""The citizen's two-way channel in a real browser (headless Chromium against `triage serve`).

A citizen files a submission with a photo and a PDF; a clerk sees both files and returns the case for
more information; the citizen adds it through the secret follow-up link from the receipt; the handler
answers; the citizen rates the answer "not solved" and the case reopens. Screenshots under
test-output/screenshots/ (citizen-*).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.service.web.test_e2e import PASSWORD, Live, live  # noqa: F401 - the live service fixture
from tests.triage.store.test_files import jpeg_with_gps
from triage.cases.accounts import Principal, Role, create_user
from triage.cases.casework import Casework
from triage.store.repositories import Submissions
from triage.store.tables import Event

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_files_return_follow_up_answer_and_not_solved_reopens(live: Live, tmp_path: Path) -> None:  # noqa: F811
    p = live.page
    photo, pdf = tmp_path / "anh-hien-truong.jpg", tmp_path / "don-de-nghi.pdf"
    photo.write_bytes(jpeg_with_gps())
    pdf.write_bytes(PDF)
    title = f"Cống thoát nước bị vỡ gây ngập {secrets.token_hex(3)}"

    # The citizen files with a photo and a PDF, and a place.
    p.logout()
    p.go("/")
    p.choose("kind", "phan_anh")
    p.choose("submitter_type", "citizen")
    p.fill("title", title)
    p.fill("content", "Cống thoát nước trên đường Lê Lợi bị vỡ, mỗi khi mưa nước tràn vào nhà dân. Đề nghị sửa chữa.")
    p.choose("province", "P-HN")
    p.fill("ward", "Phường Hoàn Kiếm")
    p.fill("address", "25 Lê Lợi")
    p.el("#files").send_keys(f"{photo}\n{pdf}")
    p.check_and_shoot("citizen-01-form-with-files")
    p.submit("#submit-btn")
    code = p.text("#tracking-code")
    assert "2 tệp" in p.text("#attachment-count")
    link = p.el("#follow-up-link").get_attribute("href")
    assert link and f"/theo-doi/{code}?k=" in link
    p.check_and_shoot("citizen-02-receipt-with-link")
    with live.db.read() as s:
        sub = Submissions(s).by_tracking_code(code)
        assert sub is not None and sub.ward == "Phường Hoàn Kiếm"
        case_id = sub.case_id

    # A clerk sees both files (served as downloads, to staff only) and returns the case.
    p.login(live.user("clerk"), PASSWORD)
    p.go(f"/staff/cases/{case_id}")
    names = [a.text for a in p.els("a.attachment-link")]
    assert names == ["anh-hien-truong.jpg", "don-de-nghi.pdf"]
    href = p.els("a.attachment-link")[1].get_attribute("href")
    assert href
    cookies = {c["name"]: c["value"] for c in p.d.get_cookies()}
    got = httpx.get(href, cookies=cookies)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"].startswith("attachment;")
    assert httpx.get(href, follow_redirects=False).status_code in (303, 401)  # no session: no file
    p.el("details.more-actions summary").click()
    p.fill("return_for_info-reason", "Vui lòng cho biết số nhà cụ thể và thời điểm cống bị vỡ.")
    p.check_and_shoot("citizen-03-clerk-case-files")
    p.submit("button[data-action=return_for_info]")
    assert p.text("#case-state") == "Chờ bổ sung thông tin"

    # The citizen adds the information through the secret link.
    p.logout()
    p.d.get(link)
    assert "số nhà cụ thể" in p.text("#return-reason")
    p.fill("text", "Số 25 Lê Lợi; cống vỡ từ ngày 2/3, sau trận mưa lớn.")
    p.check_and_shoot("citizen-04-follow-up-returned")
    p.submit("#add-info-btn")
    assert "Đã gửi thông tin bổ sung" in p.text("#done")
    assert p.text("#status") == "Đã tiếp nhận"

    # Routed again; the handler takes the case and answers it.
    with live.db.session() as s:
        admin = create_user(s, username=f"stager-c{secrets.token_hex(2)}", password=PASSWORD, role="admin")
        Casework(s, Principal(user_id=admin.id, username=admin.username, role=Role.ADMIN)).route(case_id, agency="BXD")
    p.login(live.user("handler", "BXD"), PASSWORD)
    p.go(f"/staff/cases/{case_id}")
    assert "Số 25 Lê Lợi" in p.text("#followups")
    p.submit("button[data-action=take]")
    p.fill("respond-body", "Công ty thoát nước đã được giao sửa cống trước ngày 20/3.")
    p.submit("button[data-action=respond]")
    assert p.text("#case-state") == "Đã trả lời"

    # The citizen rates the answer "not solved": the case reopens.
    p.logout()
    p.d.get(link)
    assert "Công ty thoát nước" in p.text("#answer-1")
    p.el("#rating-not_solved").click()
    p.fill("comment", "Đến nay cống vẫn chưa được sửa.")
    p.check_and_shoot("citizen-05-rate")
    p.submit("#rate-btn")
    assert "Cảm ơn" in p.text("#done")
    assert p.text("#status") == "Đang xử lý"
    with live.db.read() as s:
        reopen = s.query(Event).filter(Event.case_id == case_id, Event.action == "reopen").one()
        assert reopen.actor == "citizen"
