"""Brute-force similar cases over stored embeddings (the stand-in for faiss)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from tests.db import minimal_submission
from triage.store.db import Database
from triage.store.models import Case, Submission
from triage.store.vectors import CaseVectors, from_bytes, to_bytes


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def add(db: Database, vector: np.ndarray | None, case_id: int | None = None) -> int:
    now = datetime.now(UTC)
    with db.session() as s:
        if case_id is None:
            case = Case(state="new", kind="phan_anh", received_at=now, updated_at=now)
            s.add(case)
            s.flush()
            case_id = case.id
        n = s.query(Submission).count()
        s.add(
            minimal_submission(
                case_id,
                f"PAKN-VEC{n:04d}-{case_id:04d}",
                embedding=None if vector is None else to_bytes(vector),
            )
        )
    return case_id


def test_bytes_round_trip() -> None:
    v = unit(1, 2, 3)
    assert np.array_equal(from_bytes(to_bytes(v)), v)


def test_search_ranks_cases_by_cosine_and_reads_new_rows(empty_db: Database) -> None:
    index = CaseVectors(empty_db)
    assert index.search(unit(1, 0, 0), 5) == []
    a = add(empty_db, unit(1, 0, 0))
    b = add(empty_db, unit(1, 1, 0))
    c = add(empty_db, unit(0, 0, 1))
    add(empty_db, None)  # a submission without an embedding is ignored
    add(empty_db, unit(0.9, 0.1, 0), case_id=b)  # two submissions in one case: the case appears once
    hits = index.search(unit(1, 0.05, 0), 5)
    assert [h[0] for h in hits] == [a, b, c]
    assert hits[0][1] > 0.99 and abs(hits[2][1]) < 0.1
    assert [h[0] for h in index.search(unit(1, 0, 0), 1)] == [a]
    assert [h[0] for h in index.search(unit(1, 0, 0), 5, exclude_case=a)] == [b, c]
    d = add(empty_db, unit(0, 0.1, 1))  # added after the first search: found without a restart
    assert index.search(unit(0, 0, 1), 1)[0][0] in {c, d}
    assert index.refresh() == 0
