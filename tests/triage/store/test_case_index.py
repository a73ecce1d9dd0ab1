"""CaseIndex: similar earlier cases from the database, following the audit trail, persisted and rebuilt."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import update

from tests.db import minimal_submission
from triage.cases import audit
from triage.store.case_index import CaseIndex
from triage.store.db import Database
from triage.store.tables import Case, Submission
from triage.store.vectors import from_bytes, to_bytes


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def add(db: Database, vector: np.ndarray | None, case_id: int | None = None) -> int:
    """A case (or one more submission of ``case_id``) with its intake event, as ``intake.receive`` writes it."""
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
                case_id, f"PAKN-IDX{n:04d}-{case_id:04d}", embedding=None if vector is None else to_bytes(vector)
            )
        )
        audit.record(s, actor="public", action="submit", case_id=case_id)
    return case_id


def merge(db: Database, case_id: int, into: int) -> None:
    with db.session() as s:
        s.execute(update(Case).where(Case.id == case_id).values(merged_into=into))
        audit.record(s, actor="clerk", action="merge", case_id=case_id)


def test_bytes_round_trip() -> None:
    v = unit(1, 2, 3)
    assert np.array_equal(from_bytes(to_bytes(v)), v)


def test_search_follows_the_audit_trail(empty_db: Database) -> None:
    index = CaseIndex(empty_db)
    assert index.search(unit(1, 0, 0), 5) == []
    a = add(empty_db, unit(1, 0, 0))
    b = add(empty_db, unit(1, 1, 0))
    c = add(empty_db, unit(0, 0, 1))
    add(empty_db, None)  # a submission without an embedding is not indexed
    add(empty_db, unit(0, 0, -1), case_id=b)  # a later submission does not replace the case's first vector
    hits = index.search(unit(1, 0.05, 0), 5)
    assert [h[0] for h in hits] == [a, b, c]
    assert hits[0][1] > 0.99 and abs(hits[2][1]) < 0.1
    assert [h[0] for h in index.search(unit(1, 0, 0), 5, exclude_case=a)] == [b, c]
    d = add(empty_db, unit(0, 0.1, 1))  # added after the first search: found without a restart
    assert index.search(unit(0, 0, 1), 1)[0][0] in {c, d}
    merge(empty_db, d, c)  # folded into another case: no longer suggested
    assert d not in [h[0] for h in index.search(unit(0, 0.1, 1), 5)]
    assert index.refresh() == 0 and len(index) == 3


def test_save_load_and_a_foreign_index_is_rebuilt(empty_db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "index"
    first = CaseIndex(empty_db, folder=folder)
    ids = [add(empty_db, unit(1, i, 0)) for i in range(5)]
    first.refresh()
    first.save()
    later = add(empty_db, unit(0, 1, 1))  # written after the save: the next start reads it from the trail
    second = CaseIndex(empty_db, folder=folder)
    assert second.load() and len(second) == 5
    second.refresh()
    assert len(second) == 6 and second.search(unit(0, 1, 1), 1)[0][0] == later
    assert [h[0] for h in second.search(unit(1, 0, 0), 6)] == [h[0] for h in first.search(unit(1, 0, 0), 6)]
    assert set(ids) < {h[0] for h in second.search(unit(1, 1, 0), 6)}
    # A saved index whose last event is not in this database (another one, or a restore) is not trusted.
    import json

    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "last_hash": "0" * 64}))
    other = CaseIndex(empty_db, folder=folder)
    assert not other.load()
    assert len(other.open()) == 6  # rebuilt from the database


def test_rebuild_switches_to_hnsw_with_the_same_ids(empty_db: Database) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [add(empty_db, v) for v in vectors]
    small = CaseIndex(empty_db, approximate_from=1_000)
    small.refresh()
    big = CaseIndex(empty_db, approximate_from=20)
    assert big.rebuild() == 40 and big.kind == "hnsw" and small.kind == "flat"
    for i in (0, 17, 39):
        assert big.search(vectors[i], 1)[0][0] == ids[i] == small.search(vectors[i], 1)[0][0]
