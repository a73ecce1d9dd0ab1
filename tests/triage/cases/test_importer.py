"""Importing the archive: Vietnamese headers and a mapping file, all-or-nothing validation, idempotence,
reviewed labels, the case index and the audit trail (both backends, the real encoder)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from triage.cases import audit
from triage.cases.accounts import create_user
from triage.cases.import_files import Mapping, read_rows
from triage.cases.importer import (
    ImportRejected,
    build_theme_history,
    import_file,
    theme_periods,
    validate,
)
from triage.store.case_index import CaseIndex
from triage.store.db import Database
from triage.store.tables import Case, Event, Response, ReviewedLabel, Submission, ThemeRecord

HEADERS = ["Mã hồ sơ", "Ngày tiếp nhận", "Loại", "Nội dung", "Cơ quan xử lý", "Trạng thái", "Trả lời", "Ngày trả lời"]
ROWS = [
    ["HS-001", "15/03/2023", "Phản ánh", "Đường Láng ngập nặng sau mưa, đề nghị nạo vét cống thoát nước.",
     "Bộ Xây dựng", "Đã trả lời", "Đã chuyển Sở Xây dựng Hà Nội xử lý.", "20/03/2023"],
    ["HS-002", "2023-04-02", "Kiến nghị", "Đề nghị đơn giản hóa thủ tục cấp giấy phép kinh doanh cho hộ cá thể.",
     "Bộ Tài chính", "Đang xử lý", "", ""],
    ["HS-003", "03/05/2023 09:30", "Sáng kiến", "Sáng kiến số hóa hồ sơ khám bệnh bằng căn cước điện tử.",
     "Bộ Y tế", "", "", ""],
    ["HS-004", "10/06/2023", "Phản ánh", "Hỏi về thời hạn nộp hồ sơ đăng ký đề tài khoa học cấp quốc gia.",
     "", "Mới tiếp nhận", "", ""],
]  # fmt: skip


def _write_csv(path: Path, headers: list[str], rows: list[list[Any]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:  # with a BOM, as Excel saves it
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


@pytest.fixture
def reviewer(empty_db: Database) -> str:
    with empty_db.session() as s:
        create_user(s, username="luutru", password="mat-khau-dai-du", role="admin")
    return "luutru"


def _counts(db: Database) -> dict[str, int]:
    with db.read() as s:
        tables = (Case, Submission, Response, ReviewedLabel, Event)
        return {t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0) for t in tables}


def test_vietnamese_headers_imported_with_original_dates_labels_and_audit(
    empty_db: Database, reviewer: str, embedder: Any, tmp_path: Path
) -> None:
    path = _write_csv(tmp_path / "luu-tru.csv", HEADERS, ROWS, delimiter=";")
    before = _counts(empty_db)
    result = import_file(empty_db, path, embedder=embedder, reviewer=reviewer)
    assert (result.imported, result.skipped, result.answers) == (4, 0, 1)
    assert result.labels == 3  # every routed case: HS-001, HS-002 and HS-003 (no state given: triaged)
    with empty_db.read() as s:
        cases = {c.external_id: c for c in s.scalars(select(Case))}
        first = cases["HS-001"]
        assert first.state == "responded" and first.agency_code is not None and first.kind == "phan_anh"
        # 15/03/2023 is local (Vietnam) midnight: 17:00 UTC the day before.
        assert first.received_at == datetime(2023, 3, 14, 17, 0, tzinfo=UTC)
        assert first.answered_at == datetime(2023, 3, 19, 17, 0, tzinfo=UTC)
        assert cases["HS-003"].state == "triaged" and cases["HS-004"].state == "new"
        sub = s.scalar(select(Submission).where(Submission.case_id == first.id))
        assert sub is not None and sub.created_at == first.received_at and sub.embedding is not None
        assert sub.content_raw == ROWS[0][3]
        answer = s.scalar(select(Response).where(Response.case_id == first.id))
        assert answer is not None and answer.body == ROWS[0][6]
        labels = s.scalars(select(ReviewedLabel).order_by(ReviewedLabel.case_id)).all()
        assert [lb.case_id for lb in labels] == [first.id, cases["HS-002"].id, cases["HS-003"].id]
        assert all(lb.confirmed and lb.agency_code for lb in labels)
        events = s.scalars(select(Event).where(Event.action == "import").order_by(Event.seq)).all()
        assert [e.after["external_id"] for e in events] == ["HS-001", "HS-002", "HS-003", "HS-004"]
        assert events[0].after["received_at"] == "2023-03-14T17:00:00+00:00"
        assert events[0].actor == reviewer and events[0].after["response_id"] == answer.id
        report = audit.verify(s)
        assert report.ok, report.lines()
    after = _counts(empty_db)
    assert after["events"] - before["events"] == 4
    # The case index follows the import events: each imported case is found by its own text.
    index = CaseIndex(empty_db)
    assert index.refresh() >= 4
    vec = embedder.encode([ROWS[0][3]])[0]
    assert index.search(vec, 1)[0][0] == first.id


def test_reimport_skips_what_is_there_and_adds_the_new_rows(
    empty_db: Database, reviewer: str, embedder: Any, tmp_path: Path
) -> None:
    path = _write_csv(tmp_path / "a.csv", HEADERS, ROWS[:2])
    import_file(empty_db, path, embedder=embedder, reviewer=reviewer)
    once = _counts(empty_db)
    again = import_file(empty_db, path, embedder=embedder, reviewer=reviewer)
    assert (again.imported, again.skipped) == (0, 2)
    assert _counts(empty_db) == once
    grown = _write_csv(tmp_path / "b.csv", HEADERS, ROWS)
    third = import_file(empty_db, grown, embedder=embedder, reviewer=reviewer)
    assert (third.imported, third.skipped) == (2, 2)
    with empty_db.read() as s:
        assert sorted(s.scalars(select(Case.external_id))) == ["HS-001", "HS-002", "HS-003", "HS-004"]
        assert audit.verify(s).ok


def test_errors_reported_by_line_and_column_and_nothing_written(
    empty_db: Database, reviewer: str, embedder: Any, tmp_path: Path
) -> None:
    bad = [
        ROWS[0],
        ["HS-010", "31/02/2023", "Phản ánh", "Nội dung hợp lệ.", "Bộ Y tế", "", "", ""],  # no 31 February
        ["HS-011", "01/03/2023", "Khiếu nại", "Nội dung hợp lệ.", "Bộ Y tế", "", "", ""],  # not a kind here
        ["HS-012", "01/03/2023", "Phản ánh", "   ", "Bộ Không Tồn Tại", "", "", ""],  # empty text, unknown agency
        ["HS-001", "01/03/2023", "Phản ánh", "Trùng mã.", "Bộ Y tế", "", "", ""],  # id already on line 2
        ["HS-013", "05/03/2023", "Phản ánh", "Trả lời trước ngày nhận.", "Bộ Y tế", "", "Đã trả lời.", "01/03/2023"],
    ]
    path = _write_csv(tmp_path / "loi.csv", HEADERS, bad)
    before = _counts(empty_db)
    with pytest.raises(ImportRejected) as caught:
        import_file(empty_db, path, embedder=embedder, reviewer=reviewer)
    found = {(e.line, e.column) for e in caught.value.errors}
    assert found == {
        (3, "Ngày tiếp nhận"),
        (4, "Loại"),
        (5, "Nội dung"),
        (5, "Cơ quan xử lý"),
        (6, "Mã hồ sơ"),
        (7, "Ngày trả lời"),
    }
    assert "already on line 2" in next(e.reason for e in caught.value.errors if e.line == 6)
    assert _counts(empty_db) == before  # the valid first row was not written either


def test_a_failing_write_leaves_nothing_behind(
    empty_db: Database, reviewer: str, embedder: Any, tmp_path: Path
) -> None:
    """A failure inside the write pass (here: the audit head gone) rolls the whole import back."""
    path = _write_csv(tmp_path / "a.csv", HEADERS, ROWS)
    before = _counts(empty_db)
    with empty_db.session() as s:
        from triage.store.tables import AuditHead

        head = s.get(AuditHead, 1)
        assert head is not None
        saved = (head.seq, head.hash, head.mac)
        head.seq = head.seq + 5  # the chain head no longer names the last event: appends must stop
    with pytest.raises(Exception, match="audit chain head"):
        import_file(empty_db, path, embedder=embedder, reviewer=reviewer)
    with empty_db.session() as s:
        head = s.get(AuditHead, 1)
        assert head is not None
        head.seq, head.hash, head.mac = saved
    assert _counts(empty_db) == before


def test_mapping_file_xlsx_and_jsonl(empty_db: Database, reviewer: str, embedder: Any, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "columns:\n  external_id: Số PA\n  text: Nội dung phản ánh, kiến nghị\n"
        "defaults:\n  kind: phan_anh\nstates:\n  Xong: closed\nagencies:\n  Sở GTVT: Bộ Xây dựng\n"
        "date_formats: ['%d.%m.%Y']\n",
        encoding="utf-8",
    )
    rules = Mapping.load(mapping)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Số PA", "Ngày tiếp nhận", "Nội dung phản ánh, kiến nghị", "Cơ quan xử lý", "Trạng thái",
                  "Ngày trả lời", "Cột thừa"])  # fmt: skip
    sheet.append([1001, datetime(2022, 11, 2, 8, 15), "Cầu vượt xuống cấp, đề nghị sửa chữa.", "Sở GTVT", "Xong",
                  "09.11.2022", "bỏ qua"])  # fmt: skip
    sheet.append([None, None, None, None, None, None, None])  # blank spreadsheet row: ignored
    sheet.append([1002, date(2022, 12, 1), "Đề nghị lắp đèn chiếu sáng ngõ 12.", "Bộ Xây dựng", "", "", ""])
    xlsx = tmp_path / "luu-tru.xlsx"
    book.save(xlsx)
    result = import_file(empty_db, xlsx, mapping=rules, embedder=embedder, reviewer=reviewer)
    assert (result.imported, result.labels) == (2, 2)
    with empty_db.read() as s:
        case = s.scalar(select(Case).where(Case.external_id == "1001"))
        assert case is not None and case.state == "closed" and case.kind == "phan_anh"
        assert case.received_at == datetime(2022, 11, 2, 1, 15, tzinfo=UTC)  # 08:15 in Hà Nội
        assert case.ended_at == case.answered_at == datetime(2022, 11, 8, 17, 0, tzinfo=UTC)
    jsonl = tmp_path / "luu-tru.jsonl"
    lines = [
        {"Mã hồ sơ": "J-1", "Ngày tiếp nhận": "2021-05-04", "Loại": "giai_phap", "Nội dung": "Thu phí tự động."},
        {"Mã hồ sơ": "J-2", "Ngày tiếp nhận": "2021-05-05", "Loại": "kien_nghi", "Nội dung": "Giảm phí."},
    ]
    jsonl.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    rows, errors, count = validate(read_rows(jsonl, Mapping()), Mapping())
    assert (len(rows), errors, count) == (2, [], 2)
    assert [r.state for r in rows] == ["new", "new"] and rows[0].received_at.date() == date(2021, 5, 3)
    assert import_file(empty_db, jsonl, embedder=embedder, reviewer=reviewer).imported == 2


def test_theme_history_kept_over_the_original_dates(
    empty_db: Database, reviewer: str, embedder: Any, shared_data: Path, tmp_path: Path
) -> None:
    texts = [json.loads(x)["text"] for x in (shared_data / "dvc_faq" / "train.jsonl").open(encoding="utf-8")][:240]
    rows = [
        [f"F-{i}", f"2022-{1 + i % 6:02d}-{1 + i % 27:02d}", "Phản ánh", t, "", "", "", ""] for i, t in enumerate(texts)
    ]
    path = _write_csv(tmp_path / "faq.csv", HEADERS, rows)
    result = import_file(empty_db, path, embedder=embedder, reviewer=reviewer)
    assert result.imported == 240 and result.first_received == date(2022, 1, 1)
    assert theme_periods(date(2022, 1, 1), date(2022, 6, 27), 91) == [
        (date(2022, 1, 1), date(2022, 4, 1)),
        (date(2022, 4, 2), date(2022, 6, 27)),
    ]
    kept = build_theme_history(empty_db, date(2022, 1, 1), date(2022, 6, 27), days=91)
    assert kept > 0
    with empty_db.read() as s:
        first_seen = set(s.scalars(select(ThemeRecord.first_seen)))
        assert first_seen <= {date(2022, 1, 1), date(2022, 4, 2)} and date(2022, 1, 1) in first_seen


def test_archived_open_cases_already_late_do_not_all_escalate_at_once(
    empty_db: Database, reviewer: str, embedder: Any, tmp_path: Path
) -> None:
    """Old open cases are imported as already escalated for the deadline they missed: the first maintenance
    pass sends no flood of overdue notices, still lists them as overdue, and a case filed recently escalates
    normally once its own deadline passes."""
    from datetime import timedelta

    from triage.cases.escalation import escalate
    from triage.cases.notifications import AgencyContacts
    from triage.store.outbox_tables import OutboxMessage

    now = datetime(2026, 3, 2, 3, tzinfo=UTC)
    recent = ["HS-005", "25/02/2026", "Kiến nghị", "Đề nghị mở rộng giờ tiếp dân tại bộ phận một cửa.",
              "Bộ Nội vụ", "Đang xử lý", "", ""]  # fmt: skip
    path = _write_csv(tmp_path / "cu.csv", HEADERS, [*ROWS, recent])
    import_file(empty_db, path, embedder=embedder, reviewer=reviewer, now=now)
    with empty_db.read() as s:
        cases = {c.external_id: c for c in s.scalars(select(Case))}
    old_open = {cases[k].id for k in ("HS-002", "HS-003", "HS-004")}
    assert all(cases[k].escalated_for for k in ("HS-002", "HS-003", "HS-004"))
    assert cases["HS-001"].escalated_for is None and cases["HS-005"].escalated_for is None  # answered / not late

    contacts = AgencyContacts({}, default="giamsat@example.vn")
    today = now.date()
    report = empty_db.transaction(lambda s: escalate(s, today=today, contacts=contacts))
    overdue = {f.case_id for f in report.flags if f.status == "overdue"}
    assert old_open <= overdue and not any(f.escalated_now for f in report.flags)
    with empty_db.read() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.action == "escalate")) == 0
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0

    later = today + timedelta(days=90)  # the recent case's own answer deadline has passed by then
    report = empty_db.transaction(lambda s: escalate(s, today=later, contacts=contacts))
    assert {f.case_id for f in report.flags if f.escalated_now} == {cases["HS-005"].id}
