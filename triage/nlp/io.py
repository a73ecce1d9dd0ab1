"""JSON-lines input and output with errors that name the file and line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from triage.errors import InvalidInput


def _open(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield one object per non-empty line; a bad line raises InvalidInput with its number."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    with _open(path) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise InvalidInput(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
            yield row


def require_str(row: dict[str, Any], field: str, where: str) -> str:
    """The string value of ``field``, or InvalidInput saying which row lacks it."""
    value = row.get(field)
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: field {field!r} missing or not a string")
    return value


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as UTF-8 JSON lines (Vietnamese kept readable); return how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
