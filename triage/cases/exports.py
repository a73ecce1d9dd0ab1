"""Tables for spreadsheets: CSV that Excel opens with Vietnamese intact, and XLSX.

Analysts in ministries work in Excel. Excel reads a CSV without a byte-order mark in the machine's
code page and garbles every diacritic, so CSV carries a UTF-8 BOM and CRLF line ends. Citizens write
the texts we export: a cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) would
run as a formula when the file is opened, so such CSV cells get a leading apostrophe (the OWASP
advice); XLSX cells are written as strings and never as formulas.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from triage.errors import InvalidInput

Cell = str | int | float | bool | date | datetime | None
Format = Literal["csv", "xlsx"]
FORMATS: tuple[Format, ...] = ("csv", "xlsx")
MEDIA_TYPES: dict[Format, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


@dataclass(frozen=True)
class Table:
    """One sheet: a name, column headings and rows of plain values."""

    name: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[Cell, ...]] = ()

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"{self.name}: a row has {len(row)} cells for {len(self.columns)} columns")


def check_format(value: str) -> Format:
    """'csv' or 'xlsx' (any case); anything else is an InvalidInput naming both."""
    clean = value.strip().lower()
    for known in FORMATS:
        if clean == known:
            return known
    raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, got {value[:20]!r}")


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def to_csv(table: Table) -> bytes:
    """UTF-8 with a BOM, comma-separated, CRLF: what Excel, LibreOffice and Python's csv module all read."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def _sheet_name(name: str, taken: set[str]) -> str:
    base = _SHEET_BAD.sub(" ", name).strip("'") or "Sheet"
    base = base[:31]
    candidate, n = base, 2
    while candidate.lower() in taken:
        suffix = f" ({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


def to_xlsx(tables: Sequence[Table]) -> bytes:
    """One workbook, a sheet per table: bold frozen header, dates as dates, text never as a formula."""
    import xlsxwriter  # deferred: only an export needs it

    buffer = io.BytesIO()
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    book = xlsxwriter.Workbook(buffer, options)
    bold = book.add_format({"bold": True})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    moment = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    taken: set[str] = set()
    for table in tables:
        sheet = book.add_worksheet(_sheet_name(table.name, taken))
        sheet.write_row(0, 0, table.columns, bold)
        sheet.freeze_panes(1, 0)
        widths = [min(60, max(8, len(c) + 2)) for c in table.columns]
        for r, row in enumerate(table.rows, start=1):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, datetime):
                    sheet.write_datetime(r, c, value.replace(tzinfo=None), moment)
                elif isinstance(value, date):
                    sheet.write_datetime(r, c, datetime(value.year, value.month, value.day), day)
                elif isinstance(value, bool):
                    sheet.write_boolean(r, c, value)
                elif isinstance(value, int | float):
                    sheet.write_number(r, c, value)
                else:
                    text = str(value)
                    sheet.write_string(r, c, text)
                    widths[c] = min(60, max(widths[c], len(text) + 2))
        for c, width in enumerate(widths):
            sheet.set_column(c, c, width)
    book.close()
    return buffer.getvalue()


def render(tables: Sequence[Table], fmt: Format) -> bytes:
    """The file for ``fmt``; CSV holds one table, so a CSV of several tables is refused."""
    if fmt == "xlsx":
        return to_xlsx(tables)
    if len(tables) != 1:
        raise InvalidInput("this export has several tables: ask for format=xlsx")
    return to_csv(tables[0])
