"""Archive import benchmark: 100,000 past cases imported, indexed and themed, time per stage and peak memory.

The archive is built from the public data, real texts only (``benchmarks.corpora`` order, without the
hate-speech and spam sets, which are not feedback): public-service FAQ questions (``dvc_faq``, with
their ministry and their published answer), legal questions (``zalo_legal``, ministry where labelled),
Ministry of Health questions (``pubhealthqa``, Bộ Y tế), students' feedback (``uit_vsfc``), paraphrase
sentences (``vnpara``) and news sentences (``vntc``) to reach the size. Agencies only where the source
names one; a text with an agency and an answer is "Đã trả lời", one with an agency only "Đang xử lý",
the rest "Mới tiếp nhận". Dates are synthetic: received uniformly over 2021-01-01..2025-12-31 (seeded),
answered 3-40 days later. Kinds are drawn 60/30/5/5 (phản ánh, kiến nghị, sáng kiến, giải pháp).
The file is a CSV with Vietnamese headers and a BOM, as an Excel export would be.

Stages, each timed once (a 100,000-row import is the unit of work; the run states it): read +
validate, encode (ONNX encoder, batches of 256), write (one transaction), case-index build (the
index follows the import events), theme history (quarterly reports over the five years). Peak
memory is the process's maximum resident set after each stage. Baseline in the same run: the
intake path (``receive``, one transaction per case, no models) on the first 1,000 rows, rows/s
beside the import's write stage.
"""

from __future__ import annotations

import csv
import gzip
import json
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import data_dir
from benchmarks.corpora import split_sentences
from triage.cases.accounts import create_user
from triage.cases.import_files import Mapping, read_rows
from triage.cases.importer import build_theme_history, import_rows, validate
from triage.cases.intake import NewSubmission, receive
from triage.config import get_settings
from triage.nlp.text import normalize
from triage.store.case_index import CaseIndex
from triage.store.db import Database, init_db

Say = Callable[[str], None]
HEADERS = ["Mã hồ sơ", "Ngày tiếp nhận", "Loại", "Nội dung", "Cơ quan xử lý", "Trạng thái", "Trả lời", "Ngày trả lời"]
FIRST, LAST = date(2021, 1, 1), date(2025, 12, 31)
KINDS = (("Phản ánh", 0.6), ("Kiến nghị", 0.3), ("Sáng kiến", 0.05), ("Giải pháp", 0.05))


def _jsonl(rel: str) -> list[dict[str, Any]]:
    path = data_dir() / rel
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def archive_texts(n: int) -> list[tuple[str, str | None, str | None, str]]:
    """Up to ``n`` distinct real texts as (text, agency or None, answer or None, source)."""
    seen: set[str] = set()
    out: list[tuple[str, str | None, str | None, str]] = []

    def add(text: Any, agency: Any, answer: Any, source: str) -> bool:
        t = normalize(str(text or ""))
        if len(t) < 10 or t in seen:
            return False
        seen.add(t)
        out.append((t, str(agency) if agency else None, str(answer) if answer else None, source))
        return len(out) >= n

    sets: list[tuple[str, Callable[[dict[str, Any]], tuple[Any, Any, Any]]]] = [
        ("dvc_faq/train.jsonl", lambda r: (r["text"], r.get("agency"), r.get("answer"))),
        ("dvc_faq/dev.jsonl", lambda r: (r["text"], r.get("agency"), r.get("answer"))),
        ("zalo_legal/agency_train.jsonl", lambda r: (r["text"], r.get("agency"), None)),
        ("zalo_legal/unlabelled.jsonl", lambda r: (r["text"], None, None)),
        ("pubhealthqa/train.jsonl", lambda r: (r["text"], "Bộ Y tế", None)),
        ("uit_vsfc/train.jsonl", lambda r: (r["text"], None, None)),
        ("uit_vsfc/dev.jsonl", lambda r: (r["text"], None, None)),
    ]
    for rel, pick in sets:
        for row in _jsonl(rel):
            if add(*pick(row), rel.split("/")[0]):
                return out
    for row in _jsonl("vnpara/pairs.jsonl"):
        for key in ("text1", "text2"):
            if add(row[key], None, None, "vnpara"):
                return out
    articles = [split_sentences(str(r["text"])) for r in _jsonl("vntc/train.jsonl.gz")]
    for i in range(max((len(a) for a in articles), default=0)):
        for sentences in articles:
            if i < len(sentences) and add(sentences[i], None, None, "vntc"):
                return out
    return out


def write_archive(path: Path, n: int, seed: int = 0) -> dict[str, int]:
    """The archive CSV (Vietnamese headers, BOM); returns the rows per source."""
    rng = np.random.default_rng(seed)
    texts = archive_texts(n)
    span = (LAST - FIRST).days
    days = np.sort(rng.integers(0, span + 1, size=len(texts)))
    perm = rng.permutation(len(texts))  # sources mixed over the years, dates in file order
    kinds = rng.choice([k for k, _ in KINDS], size=len(texts), p=[p for _, p in KINDS])
    delays = rng.integers(3, 41, size=len(texts))
    sources: dict[str, int] = {}
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        for i, j in enumerate(perm):
            text, agency, answer, source = texts[int(j)]
            sources[source] = sources.get(source, 0) + 1
            received = FIRST + timedelta(days=int(days[i]))
            state = "Đã trả lời" if agency and answer else ("Đang xử lý" if agency else "Mới tiếp nhận")
            answered = (received + timedelta(days=int(delays[i]))).strftime("%d/%m/%Y") if answer else ""
            out.writerow(
                [f"LT-{i:06d}", received.strftime("%d/%m/%Y"), kinds[i], text, agency or "", state, answer or "",
                 answered]
            )  # fmt: skip
    return sources


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _intake_baseline(db: Database, path: Path, n: int) -> dict[str, Any]:
    """One ``receive`` per row (the intake path, one transaction each, no models): rows/s."""
    rows, _, _ = validate(read_rows(path, Mapping()), Mapping())
    rows = rows[:n]
    started = time.perf_counter()
    for r in rows:
        receive(db, NewSubmission(kind=r.kind, submitter_type="citizen", title="Lưu trữ", content=r.content),
                now=r.received_at)  # fmt: skip
    seconds = time.perf_counter() - started
    return {"rows": len(rows), "seconds": round(seconds, 2), "rows_per_s": round(len(rows) / seconds, 1)}


def import_benchmark(embedder: Any, say: Say, *, quick: bool = False, n: int | None = None) -> dict[str, Any]:
    """Build the archive, import it into a fresh SQLite database, index it and build its theme history."""
    n = n or (2_000 if quick else 100_000)
    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        folder = Path(tmp)
        archive = folder / "archive.csv"
        t0 = time.perf_counter()
        sources = write_archive(archive, n)
        say(f"archive of {n} rows written ({time.perf_counter() - t0:.0f} s): {sources}")
        db = Database(f"sqlite:///{folder / 'triage.db'}")
        init_db(db)
        with db.session() as s:
            create_user(s, username="luutru", password="mat-khau-dai-du", role="admin")
        stages: dict[str, dict[str, float]] = {}

        def stage(name: str, started: float) -> None:
            stages[name] = {"seconds": round(time.perf_counter() - started, 2), "peak_rss_mb": _peak_mb()}
            say(f"{name}: {stages[name]}")

        started = time.perf_counter()
        rows, errors, count = validate(read_rows(archive, Mapping()), Mapping())
        assert not errors, errors[:3]
        stage("read_validate", started)
        started = time.perf_counter()
        last = [0.0]

        def progress(name: str, done: int, total: int) -> None:
            if time.perf_counter() - last[0] > 60 or done == total:
                last[0] = time.perf_counter()
                say(f"{name} {done}/{total} ({time.perf_counter() - started:.0f} s)")

        result = import_rows(db, rows, embedder=embedder, reviewer="luutru", progress=progress)
        stages["encode"] = {"seconds": result.seconds["embed"], "peak_rss_mb": _peak_mb()}
        stages["write"] = {"seconds": result.seconds["write"], "peak_rss_mb": _peak_mb()}
        say(f"import: {result.as_dict()}")
        started = time.perf_counter()
        index = CaseIndex(
            db,
            approximate_from=settings.index_approximate_from,
            hnsw_m=settings.index_hnsw_m,
            ef_construction=settings.index_ef_construction,
            ef_search=settings.index_ef_search,
        )
        indexed = index.refresh()
        stage("index", started)
        started = time.perf_counter()
        themes = build_theme_history(db, FIRST, LAST, days=91)
        stage("themes", started)
        db_bytes = (folder / "triage.db").stat().st_size
        again = time.perf_counter()
        second = import_rows(db, rows[: min(len(rows), 10_000)], embedder=embedder, reviewer="luutru")
        rerun = {"rows": second.rows, "imported": second.imported, "skipped": second.skipped,
                 "seconds": round(time.perf_counter() - again, 2)}  # fmt: skip
        base_db = Database(f"sqlite:///{folder / 'baseline.db'}")
        init_db(base_db)
        baseline = _intake_baseline(base_db, archive, 200 if quick else 1_000)
        base_db.dispose()
        db.dispose()
    total = sum(v["seconds"] for v in stages.values())
    return {
        "rows": count,
        "imported": result.imported,
        "labels": result.labels,
        "answers": result.answers,
        "audit_events": result.events,
        "indexed_cases": indexed,
        "index_kind": index.kind,
        "themes_kept": themes,
        "theme_periods": "quarters (91 days) over 2021-01-01..2025-12-31",
        "sources": sources,
        "stages": stages,
        "total_seconds": round(total, 1),
        "rows_per_s_end_to_end": round(count / total, 1),
        "write_rows_per_s": round(result.imported / max(result.seconds["write"], 1e-9), 1),
        "peak_rss_mb": _peak_mb(),
        "sqlite_bytes_per_case": round(db_bytes / max(result.imported, 1)),
        "reimport_first_10000": rerun,
        "baseline_intake_one_transaction_per_row": baseline,
        "backend": "sqlite (file, WAL, synchronous=FULL)",
        "repeats": 1,
        "note": f"one run per stage (the import is itself the unit measured); {n:,} rows",
        "dates": f"synthetic, uniform {FIRST}..{LAST} (seed 0); answered 3-40 days later",
        "run_started": datetime.now().isoformat(timespec="seconds"),
        "quick": quick,
    }
