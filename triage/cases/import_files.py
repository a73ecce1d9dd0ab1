"""Reading an archive of past cases (CSV, XLSX or JSON lines) and naming its columns.

An archive exported by another system has its own headers, usually Vietnamese ("Mã hồ sơ",
"Ngày tiếp nhận", "Nội dung", "Cơ quan xử lý", "Trả lời"). A header is recognised when it matches one
of the known names of a field (compared without case, diacritics or punctuation), and a small mapping
file (YAML or JSON) names the rest, values to use when a column is absent, value translations and date
formats::

    columns: {external_id: "Số hồ sơ", text: "Nội dung phản ánh"}
    defaults: {kind: phan_anh}
    kinds: {"Phản ánh về hạ tầng": phan_anh}
    states: {"Đã xử lý xong": closed}
    date_formats: ["%d/%m/%Y"]

Every row keeps the line it came from (the CSV line, the spreadsheet row, the JSON line), so an error
report points at the place to fix.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from triage.errors import InvalidInput

FORMATS = ("csv", "xlsx", "jsonl")
# What an import reads, with the names a header may have (English field name first).
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "external_id": ("mã hồ sơ", "số hồ sơ", "mã phản ánh", "mã kiến nghị", "mã", "id", "ma ho so"),
    "received_at": ("ngày tiếp nhận", "ngày nhận", "ngày gửi", "thời gian tiếp nhận", "received"),
    "answered_at": ("ngày trả lời", "ngày hoàn thành", "ngày xử lý xong", "thời gian trả lời", "answered"),
    "kind": ("loại", "hình thức", "loại phản ánh kiến nghị", "phân loại"),
    "title": ("tiêu đề", "trích yếu"),
    "text": ("nội dung", "nội dung phản ánh", "nội dung kiến nghị", "content"),
    "agency": ("cơ quan xử lý", "cơ quan", "đơn vị xử lý", "cơ quan giải quyết", "agency_code"),
    "state": ("trạng thái", "tình trạng", "status"),
    "answer": ("trả lời", "nội dung trả lời", "kết quả xử lý", "kết quả trả lời"),
    "field": ("lĩnh vực",),
    "province": ("tỉnh thành phố", "tỉnh", "địa phương"),
    "submitter_type": ("đối tượng", "người gửi là", "loại người gửi"),
}
FIELDS: tuple[str, ...] = tuple(FIELD_NAMES)


def fold(text: str) -> str:
    """Lower case, no diacritics (đ -> d), punctuation and spaces to one space: how headers and values compare."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.sub(r"[\W_]+", " ", bare).strip()


@dataclass(frozen=True)
class Mapping:
    """How an archive's columns and values become fields (see the module docstring)."""

    columns: dict[str, str] = field(default_factory=dict)  # field -> header in the file
    defaults: dict[str, str] = field(default_factory=dict)  # field -> value when the column is absent or blank
    kinds: dict[str, str] = field(default_factory=dict)  # value in the file -> kind code
    states: dict[str, str] = field(default_factory=dict)  # value in the file -> case state
    agencies: dict[str, str] = field(default_factory=dict)  # value in the file -> agency code or name
    date_formats: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path | None) -> Mapping:
        """A mapping file (.yaml, .yml or .json); None gives the built-in header names only."""
        if path is None:
            return cls()
        try:
            raw = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise InvalidInput(f"mapping file {path}: {exc.strerror or exc}") from None
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml  # deferred: only mapping files need it

                data = yaml.safe_load(raw) or {}
            else:
                data = json.loads(raw)
        except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
            what = "YAML" if path.suffix.lower() in (".yaml", ".yml") else "JSON"
            raise InvalidInput(f"mapping file {path}: not valid {what}: {exc}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Any, where: str = "mapping") -> Mapping:
        if not isinstance(data, dict):
            raise InvalidInput(f"{where}: expected an object with columns, defaults, kinds, states, date_formats")
        unknown = set(data) - {"columns", "defaults", "kinds", "states", "agencies", "date_formats"}
        if unknown:
            raise InvalidInput(f"{where}: unknown keys {', '.join(sorted(unknown))}")

        def strings(key: str) -> dict[str, str]:
            value = data.get(key) or {}
            if not isinstance(value, dict):
                raise InvalidInput(f"{where}: {key} must be an object")
            return {str(k): str(v) for k, v in value.items()}

        columns, defaults = strings("columns"), strings("defaults")
        for key, names in (("columns", columns), ("defaults", defaults)):
            bad = sorted(set(names) - set(FIELDS))
            if bad:
                raise InvalidInput(f"{where}: {key}: unknown fields {', '.join(bad)} (known: {', '.join(FIELDS)})")
        formats = data.get("date_formats") or []
        if isinstance(formats, str):
            formats = [formats]
        return cls(
            columns=columns,
            defaults=defaults,
            kinds={fold(k): v for k, v in strings("kinds").items()},
            states={fold(k): v for k, v in strings("states").items()},
            agencies={fold(k): v for k, v in strings("agencies").items()},
            date_formats=tuple(str(f) for f in formats),
        )

    def resolve_headers(self, headers: list[str]) -> dict[str, int]:
        """field -> column position; a mapped header that is not in the file is an error."""
        folded = {fold(h): i for i, h in enumerate(headers) if h and h.strip()}
        found: dict[str, int] = {}
        for name, header in self.columns.items():
            if fold(header) not in folded:
                raise InvalidInput(f"the mapping names column {header!r} for {name}, but the file has no such column")
            found[name] = folded[fold(header)]
        taken = set(found.values())
        for name, names in FIELD_NAMES.items():
            if name in found:
                continue
            for candidate in (name, *names):
                pos = folded.get(fold(candidate))
                if pos is not None and pos not in taken:
                    found[name] = pos
                    taken.add(pos)
                    break
        return found


@dataclass(frozen=True)
class RawRow:
    """One row as read: its line in the file and its cells by field (strings, or dates from a spreadsheet)."""

    line: int
    cells: dict[str, Any]
    headers: dict[str, str]  # field -> header as written in the file (for the error report)


def detect_format(path: Path, fmt: str | None = None) -> str:
    name = (fmt or path.suffix.lstrip(".")).lower()
    name = {"json": "jsonl", "ndjson": "jsonl", "xlsm": "xlsx", "tsv": "csv"}.get(name, name)
    if name not in FORMATS:
        raise InvalidInput(f"{path.name}: unknown format {name!r}; expected one of {', '.join(FORMATS)} (or --format)")
    return name


def read_rows(path: Path, mapping: Mapping, fmt: str | None = None) -> Iterator[RawRow]:
    """The file's rows with their cells named by field; raises InvalidInput when the file cannot be read."""
    kind = detect_format(path, fmt)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if kind == "jsonl":
        yield from _jsonl(path, mapping)
        return
    table = _csv(path) if kind == "csv" else _xlsx(path)
    try:
        _, headers = next(table)
    except StopIteration:
        raise InvalidInput(f"{path.name}: the file is empty (no header row)") from None
    positions = mapping.resolve_headers([str(h or "") for h in headers])
    named = {f: str(headers[i]) for f, i in positions.items()}
    for line, values in table:
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue  # a blank line or an empty spreadsheet row
        cells = {f: values[i] if i < len(values) else None for f, i in positions.items()}
        yield RawRow(line=line, cells=cells, headers=named)


def _csv(path: Path) -> Iterator[tuple[int, list[Any]]]:
    # utf-8-sig: Excel writes a BOM, and the header must not start with it.
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header = fh.readline()
        fh.seek(0)
        # The header row's most frequent separator (Excel writes ";" in locales with a decimal comma);
        # csv.Sniffer guesses wrong on answers that span lines.
        delimiter = max(",;\t", key=header.count)
        reader = csv.reader(fh, delimiter=delimiter)
        start = 1
        for record in reader:
            yield start, record
            start = reader.line_num + 1


def _xlsx(path: Path) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook  # deferred: only spreadsheets need it

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException...
        raise InvalidInput(f"{path.name}: not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(row)
    finally:
        book.close()


def _jsonl(path: Path, mapping: Mapping) -> Iterator[RawRow]:
    positions: dict[str, str] | None = None
    with path.open(encoding="utf-8-sig") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawRow(line=number, cells={"__error__": f"not valid JSON: {exc.msg}"}, headers={})
                continue
            if not isinstance(obj, dict):
                yield RawRow(line=number, cells={"__error__": "not a JSON object"}, headers={})
                continue
            if positions is None:  # the first object's keys play the header row
                keys = list(obj)
                positions = {f: keys[i] for f, i in mapping.resolve_headers(keys).items()}
            yield RawRow(line=number, cells={f: obj.get(k) for f, k in positions.items()}, headers=dict(positions))


def cell_text(value: Any) -> str | None:
    """A cell as text (None when blank); whole numbers from a spreadsheet lose their ".0"."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV text (for the tests and the benchmark's files)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
