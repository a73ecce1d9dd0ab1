"""Build ``triage/data/catalogue.json.gz`` from the national procedure catalogue in ``../shared``.

The product ships facts derived from the catalogue (which agency handles which procedure and which
field, at which level), not the crawled file: procedure code and name, fields, the executing unit
named when it is a registered agency under a ministry, the issuing body resolved to a registry code,
and the level. Run from the repository root:

    .venv/bin/python scripts/build_catalogue.py [--source ../shared/data/dvc_catalog/procedures.jsonl]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

from triage.errors import NotFound
from triage.nlp.agencies import default_registry
from triage.nlp.catalogue import CATALOGUE_FORMAT, unit_of

# Issuing bodies that are not a ministry's or a province's name.
_ISSUER_ALIASES = {
    "Tập đoàn Điện lực Việt Nam": "BCT",
    "Tòa án nhân dân": "TANDTC",
}


def _issuer_code(issuer: str) -> str | None:
    registry = default_registry()
    if issuer in _ISSUER_ALIASES:
        return _ISSUER_ALIASES[issuer]
    for candidate in (issuer, issuer.split(" - ")[-1], issuer.removeprefix("Trung tâm phục vụ hành chính công ")):
        try:
            return registry.resolve(candidate).code
        except NotFound:
            continue
    return None


def build(source: Path) -> dict[str, object]:
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    fields: dict[str, int] = {}
    procedures: list[list[object]] = []
    skipped: Counter[str] = Counter()
    registry = default_registry()
    for row in rows:
        code = _issuer_code(str(row.get("issuing_body", "")))
        if code is None:
            skipped[str(row.get("issuing_body", ""))] += 1
            continue
        field_ids = [fields.setdefault(str(f), len(fields)) for f in row.get("fields", [])]
        units = sorted({u for a in row.get("executing_agencies", []) if (u := unit_of(str(a), registry)) and u != code})
        level = "province" if registry.get(code).is_local else "central"
        procedures.append([str(row["code"]), str(row["name"]).strip(), field_ids, code, level, units])
    if skipped:
        print(
            f"skipped {sum(skipped.values())} procedures with an unknown issuing body: {dict(skipped)}", file=sys.stderr
        )
    return {
        "format": CATALOGUE_FORMAT,
        "about": (
            "Thủ tục hành chính của Cơ sở dữ liệu quốc gia về thủ tục hành chính (thu thập 7/2026): "
            "mã, tên, lĩnh vực, cơ quan ban hành (mã trong danh mục cơ quan), cấp thực hiện, "
            "đơn vị trực thuộc bộ thực hiện. Dữ kiện công khai của Nhà nước, rút gọn để định tuyến."
        ),
        "columns": ["code", "name", "fields", "agency", "level", "units"],
        "fields": list(fields),
        "procedures": procedures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data/dvc_catalog/procedures.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("triage/data/catalogue.json.gz"))
    args = parser.parse_args()
    data = build(args.source)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # mtime=0: the same catalogue gives the same bytes, so a rebuild shows no spurious diff.
    with gzip.GzipFile(args.out, "wb", compresslevel=9, mtime=0) as fh:
        fh.write(payload)
    n = len(data["procedures"])  # type: ignore[arg-type]
    print(f"wrote {args.out}: {n} procedures, {len(data['fields'])} fields")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
