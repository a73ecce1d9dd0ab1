"""Exports (issue 24, item 5): case lists, statistics and themes open in a spreadsheet reader with
Vietnamese intact: read back with the csv module and openpyxl, on both backends."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from openpyxl import load_workbook

from tests.service.conftest import Service, unique
from tests.service.web.test_pages import browser
from triage.cases.exports import Table, check_format, render, to_csv
from triage.cases.workflow import CaseState
from triage.errors import InvalidInput

TITLE = "Đề nghị sửa đường ở xã Phước Hưng, huyện Long Điền"


def rows_of_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 byte-order mark to read Vietnamese"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_csv_has_a_bom_and_defuses_formulas() -> None:
    table = Table("Hồ sơ", ("Tiêu đề", "Số"), [('=HYPERLINK("http://x")', 1), ("Đường hỏng", None)])
    rows = rows_of_csv(to_csv(table))
    assert rows[0] == ["Tiêu đề", "Số"]
    assert rows[1] == ['\'=HYPERLINK("http://x")', "1"]
    assert rows[2] == ["Đường hỏng", ""]


def test_several_tables_need_xlsx_and_formats_are_checked() -> None:
    tables = [Table("A", ("x",), [(1,)]), Table("B", ("y",), [(2,)])]
    with pytest.raises(InvalidInput, match="xlsx"):
        render(tables, "csv")
    book = load_workbook(io.BytesIO(render(tables, "xlsx")))
    assert book.sheetnames == ["A", "B"]
    assert check_format(" XLSX ") == "xlsx"
    with pytest.raises(InvalidInput, match="csv, xlsx"):
        check_format("pdf")


def test_cases_export_matches_the_list_in_csv_and_xlsx(service: Service) -> None:
    marker = unique("xuất")
    ids = {service.submit(title=f"{TITLE} {marker}", content=f"Đường {marker} hỏng nặng") for _ in range(3)}
    formula = service.submit(title=f"=1+2 {marker}", content=f"Nội dung {marker}")
    headers = service.headers("admin")

    r = service.client.get("/api/v1/cases/export", params={"format": "csv", "q": marker}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"] and ".csv" in r.headers["content-disposition"]
    rows = rows_of_csv(r.content)
    assert rows[0][:3] == ["Số hồ sơ", "Tiếp nhận lúc", "Trạng thái"]
    by_id = {int(row[0]): row for row in rows[1:]}
    assert set(by_id) == ids | {formula}
    assert all(by_id[i][4] == f"{TITLE} {marker}" for i in ids)  # diacritics intact
    assert by_id[formula][4] == f"'=1+2 {marker}"

    r = service.client.get("/api/v1/cases/export", params={"format": "xlsx", "q": marker}, headers=headers)
    assert r.status_code == 200, r.text
    sheet = load_workbook(io.BytesIO(r.content))["Hồ sơ"]
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][4] == "Tiêu đề"
    assert {v[0] for v in values[1:]} == ids | {formula}
    assert {v[4] for v in values[1:] if v[0] in ids} == {f"{TITLE} {marker}"}
    assert all(isinstance(v[1], datetime) for v in values[1:])
    assert next(v[4] for v in values[1:] if v[0] == formula) == f"=1+2 {marker}"  # a string, never a formula


def test_cases_export_is_scoped_and_masked_like_the_list(service: Service) -> None:
    marker = unique("phạm-vi")
    mine = service.case_in(CaseState.TRIAGED, agency="BTC", title=f"Thuế {marker}", content=f"Thuế {marker}")
    other = service.case_in(CaseState.TRIAGED, agency="BYT", title=f"Bệnh viện {marker}", content=f"Y tế {marker}")
    r = service.client.get(
        "/api/v1/cases/export", params={"format": "csv", "q": marker}, headers=service.headers("handler", "BTC")
    )
    assert r.status_code == 200, r.text
    assert [int(row[0]) for row in rows_of_csv(r.content)[1:]] == [mine]
    phone = "0912 345 678"
    masked = service.submit(title=f"Gọi {phone} {marker}", content=f"Liên hệ {phone} {marker}")
    r = service.client.get(
        "/api/v1/cases/export", params={"format": "csv", "q": marker}, headers=service.headers("analyst")
    )
    rows = {int(row[0]): row for row in rows_of_csv(r.content)[1:]}
    assert set(rows) == {mine, other, masked}
    assert phone not in rows[masked][4]


def test_cases_export_refuses_bad_format_and_too_many_rows(service: Service) -> None:
    headers = service.headers("admin")
    r = service.client.get("/api/v1/cases/export", params={"format": "pdf"}, headers=headers)
    assert r.status_code == 422 and "csv, xlsx" in r.json()["detail"]
    marker = unique("giới-hạn")
    for _ in range(3):
        service.submit(title=f"Hồ sơ {marker}", content=f"Nội dung {marker}")
    settings = service.svc.settings
    old = settings.export_max_rows
    settings.export_max_rows = 2
    try:
        r = service.client.get("/api/v1/cases/export", params={"q": marker}, headers=headers)
    finally:
        settings.export_max_rows = old
    assert r.status_code == 422 and "3 cases match" in r.json()["detail"]
    assert service.client.get("/api/v1/cases/export").status_code == 401


def test_stats_export_has_every_table_in_xlsx_and_one_in_csv(service: Service) -> None:
    service.case_in(CaseState.RESPONDED, agency="BTC")
    headers = service.headers("analyst")
    r = service.client.get("/api/v1/stats/export", headers=headers)
    assert r.status_code == 200, r.text
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["Theo cơ quan", "Theo nhóm nhiệm vụ", "Kỳ báo cáo"]
    agencies = list(book["Theo cơ quan"].iter_rows(values_only=True))
    assert agencies[0][:3] == ("Mã cơ quan", "Cơ quan", "Tiếp nhận")
    btc = next(row for row in agencies[1:] if row[0] == "BTC")
    assert btc[1] == "Bộ Tài chính" and btc[2] >= 1
    json_stats = service.client.get("/api/v1/stats", headers=headers).json()
    assert btc[2] == next(a["received"] for a in json_stats["agencies"] if a["agency_code"] == "BTC")

    r = service.client.get(
        "/api/v1/stats/export", params={"format": "csv", "table": "programme_fields"}, headers=headers
    )
    rows = rows_of_csv(r.content)
    assert rows[0][:2] == ["Mã nhóm", "Nhóm nhiệm vụ"]
    assert len(rows) - 1 == len(json_stats["programme_fields"])
    assert service.client.get("/api/v1/stats/export", headers=service.headers("clerk")).status_code == 403


def test_the_reports_page_links_to_its_exports(service: Service) -> None:
    client = browser(service, "analyst")
    page = client.get("/staff/reports")
    assert page.status_code == 200
    assert "/staff/reports/export?what=stats&amp;format=xlsx" in page.text
    r = client.get("/staff/reports/export", params={"what": "stats", "format": "csv"})
    assert r.status_code == 200, r.text
    assert rows_of_csv(r.content)[0][:2] == ["Mã cơ quan", "Cơ quan"]
    r = client.get("/staff/reports/export", params={"what": "stats", "format": "ods"})
    assert r.status_code == 422


@pytest.mark.slow
def test_theme_export_is_the_report_as_a_workbook(service: Service) -> None:
    from tests.service.test_themes_api import PERIOD, _stage

    _stage(service)
    headers = service.headers("analyst")
    report = service.client.get("/api/v1/themes", params=PERIOD, headers=headers).json()
    r = service.client.get("/api/v1/themes/export", params=PERIOD, headers=headers)
    assert r.status_code == 200, r.text
    book = load_workbook(io.BytesIO(r.content))
    themes = list(book["Chủ đề"].iter_rows(values_only=True))
    assert themes[0][:2] == ("Mã chủ đề", "Nhãn")
    assert [(row[0], row[1], row[3]) for row in themes[1:]] == [
        (t["id"], t["label"], t["size"]) for t in report["themes"]
    ]
    weekly = list(book["Theo tuần"].iter_rows(values_only=True))
    assert [row[1] for row in weekly[1:]] == report["totals_by_week"]
    r = service.client.get("/api/v1/themes/export", params={**PERIOD, "format": "csv"}, headers=headers)
    assert [row[1] for row in rows_of_csv(r.content)[1:]] == [t["label"] for t in report["themes"]]
