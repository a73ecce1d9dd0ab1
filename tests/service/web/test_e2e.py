"""End to end in a real browser: the real service (`triage serve`, SQLite in a tmp dir, the default
models) driven by headless Chromium. A citizen submits, a clerk confirms the suggested route from the
keyboard, the handler responds, the citizen's tracking page shows the answer; another agency's handler
cannot open the case; the analyst's report draws its charts. Screenshots: test-output/screenshots/.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from benchmarks.load.server import Server
from tests.service.web.browser import Page, start_chrome
from triage.cases.accounts import Principal, Role, create_user
from triage.cases.calendar import default_calendar, local_tz, to_local_date
from triage.cases.casework import Casework
from triage.cases.intake import NewSubmission, receive
from triage.cases.workflow import DeadlinePolicy, deadline_status, response_deadline
from triage.config import Settings
from triage.store.db import Database, init_db

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PASSWORD = "mật-khẩu-trình-duyệt-123"
_n = itertools.count(1)


@dataclass
class Live:
    page: Page
    url: str
    db: Database

    def user(self, role: str, agency: str | None = None) -> str:
        """A new account in the live service's database (through the core, as `triage users create` does)."""
        name = f"{role}{next(_n)}"
        with self.db.session() as s:
            create_user(s, username=name, password=PASSWORD, role=role, agency_code=agency)
        return name

    def stage(self, title: str, agency: str, received: datetime, content: str | None = None) -> int:
        """A case received at ``received`` and routed to ``agency`` (for deadlines a test cannot wait for)."""
        receipt = receive(
            self.db,
            NewSubmission(
                kind="phan_anh",
                submitter_type="citizen",
                title=title,
                content=content or f"{title}. Đề nghị cơ quan có thẩm quyền xem xét, giải quyết.",
                contact_name="Trần Thị Bình",
                contact_phone="0987 654 321",
            ),
            now=received,
        )
        with self.db.session() as s:
            admin = create_user(s, username=f"stager{next(_n)}", password=PASSWORD, role="admin")
            who = Principal(user_id=admin.id, username=admin.username, role=Role.ADMIN)
            Casework(s, who, now=received).route(receipt.case_id, agency=agency)
        return receipt.case_id


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, encoder_path: Path) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{data / 'triage.db'}"
    db = Database.from_settings(Settings(data_dir=data, database_url=url))
    init_db(db)
    server = Server(
        data,
        extra_env={
            "TRIAGE_DATABASE_URL": url,
            "TRIAGE_ENCODER_PATH": str(encoder_path),
            "TRIAGE_JWT_SECRET": secrets.token_urlsafe(40),
        },
    )
    server.start()
    driver = start_chrome()
    try:
        yield Live(page=Page(driver, server.url), url=server.url, db=db)
    finally:
        driver.quit()
        server.stop()
        db.dispose()


def _received_for(status: str) -> datetime:
    """A receipt time (a weekday morning, local) whose answer deadline is ``status`` today."""
    cal, policy = default_calendar(), DeadlinePolicy()
    today = to_local_date(datetime.now(local_tz()))
    for back in range(1, 60):
        day = today - timedelta(days=back)
        due = response_deadline(day, "phan_anh", policy, cal)
        if cal.is_working_day(day) and deadline_status(due, today, cal, policy) == status:
            return datetime.combine(day, time(9), tzinfo=local_tz())
    raise AssertionError(f"no receipt day gives {status}")


def test_public_form_shows_vietnamese_errors_and_keeps_input(live: Live) -> None:
    p = live.page
    p.logout()
    p.go("/")
    assert p.h1().startswith("Gửi phản ánh")
    p.check_and_shoot("01-submit-form")
    p.fill("title", "Đèn đường hỏng trước cổng trường")
    p.fill("contact_email", "khong-phai-email")
    p.submit("#submit-btn")
    summary = p.text("#error-summary")
    assert "Vui lòng chọn loại" in summary
    assert "Vui lòng nhập nội dung" in summary
    assert "Địa chỉ email không hợp lệ" in summary
    assert p.el("#title").get_attribute("value") == "Đèn đường hỏng trước cổng trường"
    assert p.el("#contact_email").get_attribute("value") == "khong-phai-email"
    assert p.el("#content").get_attribute("aria-invalid") == "true"
    p.check_and_shoot("02-submit-errors")


def test_citizen_clerk_handler_and_tracking(live: Live) -> None:
    p = live.page
    title = f"Hoàn thuế thu nhập cá nhân chậm {secrets.token_hex(3)}"
    answer = "Cục Thuế đã hoàn thuế cho ông/bà ngày 10/4; xin lỗi vì sự chậm trễ."

    # The citizen submits.
    p.logout()
    p.go("/")
    p.choose("kind", "phan_anh")
    p.choose("submitter_type", "citizen")
    p.fill("title", title)
    p.fill(
        "content",
        "Tôi nộp hồ sơ hoàn thuế thu nhập cá nhân năm 2025 từ tháng 3 nhưng đến nay chưa được hoàn thuế. "
        "Đề nghị cơ quan thuế giải quyết.",
    )
    p.choose("province", "P-HN")
    p.fill("contact_name", "Nguyễn Văn An")
    p.fill("contact_phone", "0912 345 678")
    p.submit("#submit-btn")
    code = p.text("#tracking-code")
    assert re.fullmatch(r"PAKN-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", code)
    assert re.search(r"\d{2}/\d{2}/\d{4}", p.text("#answer-due"))
    p.check_and_shoot("03-receipt")
    p.go(f"/track?code={code}")
    assert p.text("#status") == "Đã tiếp nhận"

    # The clerk confirms the suggested route from the keyboard (focus the case, Enter).
    p.login(live.user("clerk"), PASSWORD)
    assert p.path.startswith("/staff/inbox")
    card = next(c for c in p.els(".case-card") if title in c.text)
    case_id = card.get_attribute("data-case")
    assert case_id
    suggestions = card.find_elements("css selector", ".top3 li")
    assert len(suggestions) == 3
    assert all(li.find_elements("css selector", "svg.conf rect.conf-fg") for li in suggestions)
    chosen = Select(card.find_element("css selector", "select[name=agency]")).first_selected_option
    suggested = chosen.get_attribute("value")
    assert suggested
    assert chosen.text.startswith(suggestions[0].find_element("css selector", ".top3-name").text)
    p.check_and_shoot("04-inbox")
    # j moves the focus down the list until it reaches this case; Enter then confirms its route.
    p.d.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    cards = [c.get_attribute("data-case") for c in p.els(".case-card")]
    for _ in range(cards.index(case_id) + 1):
        ActionChains(p.d).send_keys("j").perform()
    assert p.d.execute_script("return document.activeElement.dataset.case") == case_id
    old = p.el("html")
    ActionChains(p.d).send_keys(Keys.ENTER).perform()
    p.wait.until(lambda d: old.id != d.find_element("css selector", "html").id)
    p.go(f"/staff/cases/{case_id}")
    assert p.text("#case-state") == "Đã phân loại"
    assert "xác nhận đúng gợi ý của hệ thống" in p.text("#timeline")
    assert "0912 345 678" in p.text("main")  # a clerk sees the contact details
    p.check_and_shoot("05-case-clerk")

    # The handler of the suggested agency takes the case and answers it.
    handler = live.user("handler", suggested)
    p.login(handler, PASSWORD)
    assert p.el(f"#row-{case_id}")
    p.check_and_shoot("06-queue")
    p.go(f"/staff/cases/{case_id}")
    p.submit("button[data-action=take]")
    assert p.text("#case-state") == "Đang xử lý"
    p.fill("respond-body", answer)
    p.submit("button[data-action=respond]")
    assert p.text("#case-state") == "Đã trả lời"
    assert "Trả lời người gửi" in p.text("#timeline")
    p.check_and_shoot("07-case-handler")

    # A handler of another agency: the case does not exist for it.
    other = "BYT" if suggested != "BYT" else "BGDDT"
    p.login(live.user("handler", other), PASSWORD)
    assert not p.els(f"#row-{case_id}")
    p.go(f"/staff/cases/{case_id}")
    assert p.h1() == "Không tìm thấy"
    assert title not in p.text("main")
    p.check_and_shoot("08-case-other-agency")

    # The citizen's tracking page shows the answer.
    p.logout()
    p.go("/track")
    p.fill("code", code)
    p.submit("form[role=search] button")
    assert p.text("#status") == "Đã trả lời"
    assert answer in p.text("#answer-1")
    p.check_and_shoot("09-track-answered")


def test_handler_queue_highlights_due_soon_and_overdue(live: Live) -> None:
    p = live.page
    overdue = live.stage("Nước thải khu công nghiệp gây ô nhiễm kênh", "BNNMT", _received_for("overdue"))
    soon = live.stage("Chậm cấp giấy chứng nhận quyền sử dụng đất", "BNNMT", _received_for("due_soon"))
    fine = live.stage("Đề xuất trồng thêm cây xanh ven sông", "BNNMT", datetime.now(local_tz()))
    p.login(live.user("handler", "BNNMT"), PASSWORD)
    p.go("/staff/queue")
    assert "row-overdue" in (p.el(f"#row-{overdue}").get_attribute("class") or "")
    assert "row-due_soon" in (p.el(f"#row-{soon}").get_attribute("class") or "")
    assert "row-on_track" in (p.el(f"#row-{fine}").get_attribute("class") or "")
    rows = [r.get_attribute("id") for r in p.els("table.queue tbody tr")]
    assert rows.index(f"row-{overdue}") < rows.index(f"row-{soon}") < rows.index(f"row-{fine}")  # most urgent first
    p.check_and_shoot("10-queue-deadlines")
    p.go("/staff/queue?view=overdue")
    assert [r.get_attribute("id") for r in p.els("table.queue tbody tr")] == [f"row-{overdue}"]
    p.go(f"/staff/cases/{overdue}")
    assert p.text("#countdown").startswith("Quá hạn")


def test_analyst_report_draws_charts_and_masks_cases(live: Live) -> None:
    p = live.page
    masked = live.stage(
        "Bệnh viện thu thêm phí ngoài quy định",
        "BYT",
        datetime.now(local_tz()),
        content="Bệnh viện huyện thu thêm 500.000 đồng; liên hệ tôi qua số 0903 111 222 hoặc binh@example.vn.",
    )
    p.login(live.user("analyst"), PASSWORD)
    today = to_local_date(datetime.now(local_tz()))
    p.go(f"/staff/reports?start={(today - timedelta(days=90)).isoformat()}&end={today.isoformat()}")
    assert p.h1() == "Báo cáo xử lý theo cơ quan"
    charts = p.els("svg.chart")
    ids = [c.get_attribute("id") for c in charts]
    assert ids == ["chart-volume", "chart-ontime", "chart-backlog", "chart-programme"]
    assert "Chuyển đổi số trong cơ quan nhà nước" in p.text("#programme-table")
    bars = p.els("#chart-volume rect.bar")
    assert bars and max(float(b.get_attribute("width") or 0) for b in bars) > 0
    assert int(p.text("#kpi-received").replace(".", "")) >= 1
    assert "Bộ Y tế" in p.text("#stats-table")
    assert "Chưa có báo cáo chủ đề nổi bật" in p.text("#themes")
    p.check_and_shoot("11-reports")
    p.go(f"/staff/cases/{masked}")
    page = p.text("main")
    assert "0903 111 222" not in page and "binh@example.vn" not in page and "0987 654 321" not in page
    assert p.el("#masked-note")
    p.check_and_shoot("12-case-analyst")


def test_models_page_and_login_page(live: Live) -> None:
    p = live.page
    p.logout()
    p.go("/login")
    p.check_and_shoot("00-login")
    p.login(live.user("admin"), PASSWORD)
    p.go("/staff/models")
    version = httpx.get(live.url + "/health", timeout=10).json()["model_version"]
    assert p.text("#model-version") == version
    assert p.el("#no-registry")
    p.check_and_shoot("13-models")
