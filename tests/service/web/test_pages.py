"""The web pages through the real app on SQLite and PostgreSQL (no browser): sessions, CSRF, validation,
role views and the workflow actions. The browser-level checks are in test_e2e.py."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from service.web.render import templates
from tests.service.conftest import PASSWORD, Service
from triage.cases.accounts import principal_from_token
from triage.cases.calendar import to_local_date
from triage.cases.stats import agency_stats
from triage.cases.theme_report import EmergingTest, ThemeReport, ThemeSummary
from triage.cases.workflow import CaseState
from triage.store.repositories import Labels, Submissions

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client: TestClient, path: str = "/login") -> str:
    r = client.get(path)
    match = TOKEN.search(r.text)
    assert match, r.text[:500]
    return match.group(1)


def browser(service: Service, role: str | None = None, agency: str | None = None) -> TestClient:
    """A client with its own cookie jar, signed in through the login form when ``role`` is given."""
    client = TestClient(service.client.app)
    if role is not None:
        name = service.user(role, agency)[1].username
        r = client.post(
            "/login", data={"csrf_token": csrf(client), "username": name, "password": PASSWORD}, follow_redirects=False
        )
        assert r.status_code == 303, r.text
    return client


def valid_form(token: str, **over: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "form_id": "f" * 20,
        "kind": "kien_nghi",
        "submitter_type": "business",
        "title": "Thủ tục cấp phép xây dựng kéo dài",
        "content": "Doanh nghiệp chúng tôi nộp hồ sơ cấp phép xây dựng đã ba tháng chưa có kết quả.",
        "province": "P-HN",
        "contact_phone": "0912 345 678",
        **over,
    }


def test_login_sets_httponly_lax_cookie_with_the_signed_token_and_logout_ends_it(service: Service) -> None:
    client = TestClient(service.client.app)
    name = service.user("clerk")[1].username
    r = client.post(
        "/login", data={"csrf_token": csrf(client), "username": name, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/staff/inbox"
    cookie = r.headers["set-cookie"]
    assert "pakn_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    token = client.cookies["pakn_session"]
    with service.svc.db.read() as s:
        assert principal_from_token(s, token, service.svc.token_secret).username == name
    assert client.get("/staff/inbox").status_code == 200
    r = client.post("/logout", data={"csrf_token": csrf(client, "/staff/inbox")}, follow_redirects=False)
    assert r.status_code == 303
    assert 'pakn_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    client.cookies.delete("pakn_session")
    r = client.get("/staff/inbox", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/staff/inbox"


def test_wrong_password_is_refused_in_vietnamese(service: Service) -> None:
    client = TestClient(service.client.app)
    name = service.user("analyst")[1].username
    r = client.post("/login", data={"csrf_token": csrf(client), "username": name, "password": "sai-mật-khẩu-rồi"})
    assert r.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu." in r.text
    assert "pakn_session" not in client.cookies


def test_posts_without_a_valid_csrf_token_or_from_another_origin_change_nothing(service: Service) -> None:
    client = browser(service, "clerk")
    case_id = service.submit()
    assert client.post("/login", data={"username": "x", "password": "y"}).status_code == 403
    public = client.post("/", data=valid_form("giả-mạo", form_id="csrf-" + "b" * 16))
    assert public.status_code == 403 and "CSRF" in public.text and "Thủ tục cấp phép xây dựng kéo dài" in public.text
    with service.svc.db.read() as s:
        assert Submissions(s).by_idempotency_key("web-csrf-" + "b" * 16) is None
    r = client.post(f"/staff/cases/{case_id}/act/triage", data={"csrf_token": "giả-mạo", "agency": "BTC"})
    assert r.status_code == 403 and "CSRF" in r.text
    good = csrf(client, "/staff/inbox")
    r = client.post(
        f"/staff/cases/{case_id}/act/triage",
        data={"csrf_token": good, "agency": "BTC"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    assert service.state_of(case_id) == CaseState.NEW
    # Another browser's token does not work with this browser's cookie.
    other = csrf(TestClient(service.client.app))
    r = client.post(f"/staff/cases/{case_id}/act/triage", data={"csrf_token": other, "agency": "BTC"})
    assert r.status_code == 403 and service.state_of(case_id) == CaseState.NEW


def test_invalid_submission_gets_vietnamese_messages_and_keeps_the_input(service: Service) -> None:
    client = TestClient(service.client.app)
    token = csrf(client, "/")
    form = valid_form(
        token, kind="", title="x" * 501, content="  ", province="P-KHÔNG-CÓ", contact_email="an@", contact_phone="abc"
    )
    r = client.post("/", data=form)
    assert r.status_code == 422
    for message in (
        "Vui lòng chọn loại",
        "Tiêu đề dài tối đa 500 ký tự (hiện có 501)",
        "Vui lòng nhập nội dung",
        "Tỉnh, thành phố không có trong danh mục",
        "Địa chỉ email không hợp lệ",
        "Số điện thoại không hợp lệ",
    ):
        assert message in r.text, message
    assert 'value="an@"' in r.text and 'value="abc"' in r.text and 'value="' + "x" * 501 + '"' in r.text
    assert '<option value="business" selected>' in r.text
    with service.svc.db.read() as s:
        assert Submissions(s).by_idempotency_key("web-" + "f" * 20) is None


def test_submission_gives_a_receipt_and_a_resent_form_creates_nothing_new(service: Service) -> None:
    client = TestClient(service.client.app)
    token = csrf(client, "/")
    form = valid_form(token, form_id="lần-gửi-" + "a" * 16)
    first = client.post("/", data=form, follow_redirects=False)
    again = client.post("/", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    # The same receipt; the resent form's answer carries a new follow-up secret (the first one was lost).
    first_path, first_secret = first.headers["location"].split("?k=")
    again_path, again_secret = again.headers["location"].split("?k=")
    assert first_path == again_path and first_secret != again_secret
    code = first_path.rsplit("/", 1)[1]
    page = client.get(f"/receipt/{code}")
    assert page.status_code == 200 and code in page.text and "Hạn trả lời" in page.text
    assert "follow-up-link" not in page.text  # without the secret: no link
    assert "follow-up-link" not in client.get(f"/receipt/{code}?k={first_secret}").text  # replaced
    with_link = client.get(again.headers["location"])
    assert f"/theo-doi/{code}?k={again_secret}" in with_link.text
    assert with_link.headers["referrer-policy"] == "no-referrer"
    with service.svc.db.read() as s:
        sub = Submissions(s).by_tracking_code(code)
        assert sub is not None and sub.kind == "kien_nghi" and sub.province_code == "P-HN"
        assert sub.contact_phone == "0912 345 678"
        assert len(Submissions(s).of_case(sub.case_id)) == 1
        assert sub.answer_due.strftime("%d/%m/%Y") in page.text
    track = client.get("/track", params={"code": code.lower()})
    assert track.status_code == 200 and "Đã tiếp nhận" in track.text
    assert "0912 345 678" not in track.text  # the public page shows no personal data
    assert client.get("/track", params={"code": "PAKN-0000-0000-0000"}).status_code == 404


def test_another_agencys_handler_gets_404_pages_and_cannot_act(service: Service) -> None:
    case_id = service.case_in(CaseState.IN_PROGRESS, agency="BTC")
    client = browser(service, "handler", "BYT")
    r = client.get(f"/staff/cases/{case_id}")
    assert r.status_code == 404 and "Không tìm thấy" in r.text
    assert "Hoàn thuế" not in r.text
    token = csrf(client, "/staff/queue")
    r = client.post(f"/staff/cases/{case_id}/act/respond", data={"csrf_token": token, "body": "trả lời"})
    assert r.status_code == 404
    assert service.state_of(case_id) == CaseState.IN_PROGRESS
    assert f'id="row-{case_id}"' not in client.get("/staff/queue").text
    own = browser(service, "handler", "BTC")
    assert own.get(f"/staff/cases/{case_id}").status_code == 200
    assert f'id="row-{case_id}"' in own.get("/staff/queue").text


def test_analyst_sees_the_case_masked_like_the_api(service: Service) -> None:
    case_id = service.submit(content="Gọi tôi qua số 0987 654 321 hoặc email binh.tran@example.vn về việc hoàn thuế.")
    page = browser(service, "analyst").get(f"/staff/cases/{case_id}")
    assert page.status_code == 200
    assert "0987 654 321" not in page.text and "binh.tran@example.vn" not in page.text
    assert "Nguyễn Văn An" not in page.text and "0912 345 678" not in page.text  # contact details
    assert 'id="masked-note"' in page.text
    api = service.client.get(f"/api/v1/cases/{case_id}", headers=service.headers("analyst")).json()
    assert api["submissions"][0]["content"] in page.text  # the very text the API gives an analyst
    clerk_page = browser(service, "clerk").get(f"/staff/cases/{case_id}")
    assert "0987 654 321" in clerk_page.text and "Nguyễn Văn An" in clerk_page.text


def test_route_from_the_inbox_is_a_reviewed_label_and_refusals_are_explained(service: Service) -> None:
    client = browser(service, "clerk")
    case_id = service.submit()
    inbox = client.get("/staff/inbox")
    assert f'data-case="{case_id}"' in inbox.text
    token = csrf(client, "/staff/inbox")
    r = client.post(
        f"/staff/cases/{case_id}/act/triage",
        data={"csrf_token": token, "agency": "BTC", "next": "/staff/inbox"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/staff/inbox"
    assert service.state_of(case_id) == CaseState.TRIAGED
    with service.svc.db.read() as s:
        labels = Labels(s).of_case(case_id)
        assert [label.agency_code for label in labels] == ["BTC"]
    # Missing reason: a Vietnamese message, nothing changes.
    r = client.post(f"/staff/cases/{case_id}/act/reject", data={"csrf_token": token, "reason": " "})
    assert r.status_code == 422 and "Vui lòng nhập lý do." in r.text
    # Not allowed in this state: the workflow's 409, as a page that says why.
    r = client.post(f"/staff/cases/{case_id}/act/close", data={"csrf_token": token})
    assert r.status_code == 409 and "không được phép ở trạng thái hiện tại" in r.text
    # A clerk may not answer: 403.
    service.case_in(CaseState.IN_PROGRESS)
    r = client.post(f"/staff/cases/{case_id}/act/respond", data={"csrf_token": token, "body": "x"})
    assert r.status_code in (403, 409)
    assert service.state_of(case_id) == CaseState.TRIAGED
    # An open redirect is not possible through "next".
    r = client.post(
        f"/staff/cases/{case_id}/act/triage",
        data={"csrf_token": token, "agency": "BTC", "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/staff/cases/{case_id}"


def test_handler_takes_and_answers_and_the_tracking_page_shows_the_answer(service: Service) -> None:
    case_id = service.case_in(CaseState.TRIAGED, agency="BTC")
    client = browser(service, "handler", "BTC")
    token = csrf(client, f"/staff/cases/{case_id}")
    assert 'data-action="take"' in client.get(f"/staff/cases/{case_id}").text
    assert client.post(f"/staff/cases/{case_id}/act/take", data={"csrf_token": token}).status_code == 200
    assert service.state_of(case_id) == CaseState.IN_PROGRESS
    body = "Cơ quan thuế đã giải quyết hồ sơ của ông/bà."
    assert (
        client.post(f"/staff/cases/{case_id}/act/respond", data={"csrf_token": token, "body": body}).status_code == 200
    )
    assert service.state_of(case_id) == CaseState.RESPONDED
    with service.svc.db.read() as s:
        code = Submissions(s).of_case(case_id)[0].tracking_code
    track = TestClient(service.client.app).get("/track", params={"code": code})
    assert "Đã trả lời" in track.text and body in track.text


def test_report_numbers_are_the_stats_and_bad_periods_are_explained(service: Service) -> None:
    service.case_in(CaseState.RESPONDED, agency="BYT")
    service.case_in(CaseState.IN_PROGRESS, agency="BYT")
    client = browser(service, "analyst")
    today = to_local_date(service.svc.now())
    r = client.get("/staff/reports", params={"start": today.replace(day=1).isoformat(), "end": today.isoformat()})
    assert r.status_code == 200
    with service.svc.db.read() as s:
        rows = agency_stats(s, today.replace(day=1), today, today=today)
    byt = next(row for row in rows if row.agency_code == "BYT")
    table = r.text[r.text.index('id="stats-table"') :]
    cells = re.search(r"Bộ Y tế</th>((?:<td[^>]*>[^<]*</td>)+)", table)
    assert cells
    numbers = re.findall(r"<td[^>]*>([^<]*)</td>", cells.group(1))
    assert numbers[0] == str(byt.received) and numbers[1] == str(byt.answered) and numbers[4] == str(byt.backlog)
    has_themes = '<ol class="themes">' in r.text  # other tests' cases may make enough for themes
    assert r.text.count('<svg class="chart"') == 4 + has_themes  # 3 per agency, 1 per programme field
    assert has_themes or "Chưa có báo cáo chủ đề nổi bật" in r.text
    bad = client.get("/staff/reports", params={"start": "2026-13-40"})
    assert bad.status_code == 422 and "Ngày không hợp lệ" in bad.text
    assert browser(service, "clerk").get("/staff/reports").status_code == 403


def test_theme_section_renders_a_report_when_one_is_passed_in() -> None:
    weeks = tuple(date(2026, 2, 9) + timedelta(weeks=k) for k in range(4))
    theme = ThemeSummary(
        id=0,
        label="Ngập úng đô thị",
        keywords=("ngập", "thoát nước"),
        size=42,
        share=1.0,
        trend=(2, 5, 9, 26),
        agencies=(),
        systemic=False,
        examples=(),
        emerging=EmergingTest(
            recent=35, baseline=7, expected=12.0, growth=2.9, growth_low=1.8, p_value=0.001, q_value=0.001,
            significant=True, score=1.8,
        ),
    )  # fmt: skip
    report = ThemeReport(
        since=weeks[0],
        until=date(2026, 3, 2),
        generated_at=datetime(2026, 3, 2, 1, tzinfo=UTC),
        submissions=42,
        without_embedding=0,
        weeks=weeks,
        totals_by_week=theme.trend,
        window_weeks=2,
        alpha=0.05,
        min_size=5,
        min_growth=1.5,
        outliers=0,
        outlier_share=0.0,
        themes=(theme,),
        emerging=(0,),
        systemic=(),
        note=None,
    )
    context: dict[str, object] = {
        "who": None,
        "csrf_token": "t",
        "rows": [],
        "charts": [],
        "totals": dict.fromkeys(("received", "answered", "on_time", "backlog", "overdue", "on_time_pct"), 0),
        "start": date(2026, 3, 1),
        "end": date(2026, 3, 2),
        "as_of": date(2026, 3, 2),
        "presets": [],
        "errors": [],
        "theme_report": report,
    }
    html = templates.get_template("staff/reports.html").render(**context)
    assert "Ngập úng đô thị" in html and "thoát nước" in html and "đang nổi lên" in html
    assert '<svg class="spark"' in html and "Chưa có báo cáo" not in html and "tăng 190%" in html


@pytest.mark.parametrize("path", ["/api/v1/cases/1", "/api/v1/nope"])
def test_the_json_api_keeps_json_errors(service: Service, path: str) -> None:
    r = service.client.get(path)
    assert r.headers["content-type"].startswith("application/json")
    assert r.status_code in (401, 404)


def test_unknown_page_is_a_vietnamese_404_page(service: Service) -> None:
    r = TestClient(service.client.app).get("/khong-co-trang-nay")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "Không tìm thấy" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_inbox_and_case_page_show_duplicates_and_flags_found_in_the_suggestion(service: Service) -> None:
    from triage.store.tables import Case

    earlier = service.submit(title="Hoàn thuế chậm ở Chi cục Thuế", content="Hồ sơ hoàn thuế nộp từ tháng 3 chưa xong.")
    case_id = service.submit()
    suggestion = {
        "agencies": [
            {"name": "Bộ Tài chính", "code": "BTC", "score": 0.81},
            {"name": "Bộ Y tế", "code": "BYT", "score": 0.11},
            {"name": "Bộ Nội vụ", "code": "BNV", "score": 0.05},
        ],
        "kind": "phan_anh",
        "similar": [],
        "duplicates": [{"case_id": earlier, "score": 0.97}],
        "flags": [{"label": "ngôn từ xúc phạm", "score": 0.91}, "quảng cáo"],
    }
    with service.svc.db.session() as s:
        row = s.get(Case, case_id)
        assert row is not None
        row.suggestion = suggestion
    client = browser(service, "clerk")
    inbox = client.get("/staff/inbox").text
    card = inbox[inbox.index(f'data-case="{case_id}"') :]
    card = card[: card.index("</li>\n", card.index('class="route-form"'))]
    assert f'href="/staff/cases/{earlier}">Hồ sơ #{earlier}</a>' in card and "giống 97%" in card
    assert "⚑ ngôn từ xúc phạm" in card and "(91%)" in card and "⚑ quảng cáo" in card
    assert card.count('<rect class="conf-fg') == 3
    assert '<option value="BTC" selected>Bộ Tài chính (81%)</option>' in card
    page = client.get(f"/staff/cases/{case_id}").text
    assert "Hoàn thuế chậm ở Chi cục Thuế" in page and "có thể trùng" in page and "⚑ ngôn từ xúc phạm" in page


def test_case_page_and_inbox_show_the_unit_and_the_catalogue_reason(service: Service) -> None:
    from triage.store.tables import Case

    case_id = service.submit(title="Hoàn thuế chậm", content="Hồ sơ hoàn thuế thu nhập cá nhân nộp tháng 3 chưa xong.")
    reason = "Thủ tục: Hoàn thuế thu nhập cá nhân - lĩnh vực Thuế"
    suggestion = {
        "agencies": [
            {"name": "Bộ Tài chính", "code": "BTC", "score": 0.81, "unit": "BTC-THUE", "unit_name": "Cục Thuế"},
            {"name": "Bộ Y tế", "code": "BYT", "score": 0.11, "unit": "", "unit_name": "", "reason": ""},
        ],
        "kind": "phan_anh",
    }
    suggestion["agencies"][0]["reason"] = reason
    with service.svc.db.session() as s:
        row = s.get(Case, case_id)
        assert row is not None
        row.suggestion = suggestion
    client = browser(service, "clerk")
    page = client.get(f"/staff/cases/{case_id}").text
    assert '<span class="top3-name">Bộ Tài chính</span> <span class="top3-unit">› Cục Thuế</span>' in page
    assert reason in page
    assert page.count('class="top3-unit"') == 1  # Bộ Y tế has no unit
    inbox = client.get("/staff/inbox").text
    card = inbox[inbox.index(f'data-case="{case_id}"') :]
    assert "› Cục Thuế" in card[: card.index('class="route-form"')]


def test_countdown_after_the_due_day_on_a_weekend_says_overdue() -> None:
    from service.web.casepage import countdown

    assert countdown(0, "overdue").startswith("Quá hạn")  # Saturday after a Friday deadline
    assert countdown(0, "due_soon") == "Hôm nay là hạn cuối"
    assert countdown(2, "due_soon") == "Còn 2 ngày làm việc"
    assert countdown(-3, "overdue") == "Quá hạn 3 ngày làm việc"
    assert countdown(None) == ""
