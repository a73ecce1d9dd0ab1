"""The Resolution-57 monitoring in a real browser (headless Chromium against `triage serve`, SQLite).

Two years of demo reports give a living dashboard; then Cần Thơ's reporter files its missing quarterly
figure with a PDF as evidence and a recommendation, the coordinating office returns it, the reporter
corrects it, the office verifies it, and the leader's dashboard shows the new reporting status and an
early warning for an off-track indicator. Screenshots at 1366 and 375 px go under the test's tmp dir.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

import tests.service.web.browser as browser
from benchmarks.load.server import Server
from tests.service.web.browser import Page, start_chrome
from triage.cases import audit
from triage.cases.accounts import create_user
from triage.cases.calendar import default_calendar, to_local_date
from triage.config import Settings
from triage.kpi.demo import SILENT, seed
from triage.kpi.registry import load_registry
from triage.store.db import Database, init_db
from triage.store.kpi_tables import KpiDifficulty, KpiReport
from triage.store.tables import utcnow

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PASSWORD = "mật-khẩu-giám-sát-123"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\n2 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 2 0 R>>\n%%EOF\n"


@dataclass
class Live:
    page: Page
    db: Database
    data: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, encoder_path: Path) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("kpi-e2e")
    url = f"sqlite:///{data / 'triage.db'}"
    db = Database.from_settings(Settings(data_dir=data, database_url=url))
    init_db(db)
    seed(db, load_registry(), today=to_local_date(utcnow()), calendar=default_calendar(), evidence_root=data / "files")
    with db.session() as s:
        for name, role, agency in (
            ("bc_cantho", "reporter", SILENT),
            ("dieuphoi", "coordinator", None),
            ("lanhdao", "leader", None),
        ):
            create_user(s, username=name, password=PASSWORD, role=role, agency_code=agency)
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
        yield Live(page=Page(driver, server.url), db=db, data=data)
    finally:
        driver.quit()
        server.stop()
        db.dispose()


def _state(p: Page) -> str:
    return p.el("#report-state").get_attribute("data-state") or ""


def test_report_cycle_and_leader_dashboard(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "SHOTS", tmp_path / "screenshots")
    p = live.page
    with live.db.read() as s:
        report = s.scalars(
            select(KpiReport)
            .where(KpiReport.agency_code == SILENT, KpiReport.indicator == "O_ONLINE_RATE", KpiReport.state == "due")
            .order_by(KpiReport.period.desc())
        ).first()
        assert report is not None
        rid = report.id
    pdf = tmp_path / "bao-cao-quy.pdf"
    pdf.write_bytes(PDF)

    # The reporter lands on its agency's reports and files the figure with a PDF and a recommendation.
    p.login("bc_cantho", PASSWORD)
    assert p.path.startswith("/staff/kpi/reports"), p.path
    assert all(row.get_attribute("data-report") for row in p.els("#kpi-reports tbody tr[data-report]"))
    p.go(f"/staff/kpi/reports/{rid}")
    assert _state(p) == "due"
    p.fill("value", "58,5")
    p.fill("note", "Đã triển khai tiếp nhận hồ sơ trực tuyến tại 9 quận, huyện.")
    p.el("#file").send_keys(str(pdf))
    p.fill(
        "difficulty_0",
        "Đề nghị Văn phòng Chính phủ hỗ trợ kết nối Cổng dịch vụ công quốc gia với hệ thống một cửa "
        "điện tử của thành phố để người dân không phải nộp lại giấy tờ.",
    )
    p.submit("#submit-value")
    assert _state(p) == "submitted", p.text("main")
    assert [r.get_attribute("data-kind") for r in p.els("#evidence tbody tr")] == ["file"]
    assert "PAKN-" in p.text("#difficulties")
    p.check_and_shoot("kpi-report-submitted")

    # The coordinating office returns it with what to fix.
    p.login("dieuphoi", PASSWORD)
    p.go(f"/staff/kpi/reports/{rid}")
    p.submit("#do-return")  # without a reason: refused, nothing changes
    assert _state(p) == "submitted" and "lý do" in p.text(".alert-error")
    p.fill("review-reason", "Tỷ lệ chưa khớp với số hồ sơ trực tuyến; đề nghị rà soát lại.")
    p.submit("#do-return")
    assert _state(p) == "returned"

    # The reporter corrects; the earlier PDF still backs the figure.
    p.login("bc_cantho", PASSWORD)
    p.go(f"/staff/kpi/reports/{rid}")
    assert "rà soát" in p.text("#returned-reason")
    p.fill("value", "57,9")
    p.submit("#submit-value")
    assert _state(p) == "submitted" and len(p.els("#versions li")) == 2

    # The office verifies.
    p.login("dieuphoi", PASSWORD)
    p.go(f"/staff/kpi/reports/{rid}")
    p.submit("#do-verify")
    assert _state(p) == "verified"

    # The leader's dashboard: Cần Thơ's missing reports went down by one, and the early warning names an
    # off-track strategic indicator.
    p.login("lanhdao", PASSWORD)
    assert p.path == "/staff/kpi", p.path
    row = p.el(f"#rates-table tr[data-agency='{SILENT}']").text
    with live.db.read() as s:
        missing = s.scalars(select(KpiReport).where(KpiReport.agency_code == SILENT, KpiReport.state == "due")).all()
        assert s.scalar(select(KpiReport.state).where(KpiReport.id == rid)) == "verified"
        assert s.scalar(select(KpiDifficulty.case_id).where(KpiDifficulty.report_id == rid)) is not None
        assert audit.verify(s).ok
    assert str(len([r for r in missing if r.due_date < to_local_date(utcnow())])) in row.split()
    warned = {li.get_attribute("data-indicator"): li.get_attribute("data-status") for li in p.els("#early-warning li")}
    assert warned.get("S_RD_GDP") == "off_track", warned
    assert p.el("#ind-S_ONLINE_SERVICES").get_attribute("data-status") in {"on_track", "at_risk", "off_track"}
    assert p.els("#ind-S_RD_GDP svg.chart polyline")
    shots = p.check_and_shoot("kpi-dashboard")
    assert all(Path(v["file"]).parent == tmp_path / "screenshots" for v in shots.values())
