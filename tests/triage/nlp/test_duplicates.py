"""DuplicateIndex: stable ids, exact and HNSW search, removal, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from triage.errors import InvalidInput, ModelMissing
from triage.nlp.duplicates import DuplicateIndex


def _unit(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_search_finds_itself_and_scores_are_cosine() -> None:
    v = _unit(50)
    idx = DuplicateIndex(32)
    idx.add(np.arange(1000, 1050), v)
    res = idx.search(v[:3], k=5)
    assert [r[0].id for r in res] == [1000, 1001, 1002]
    assert all(abs(r[0].score - 1.0) < 1e-5 for r in res)
    best = res[0][1]
    assert np.isclose(best.score, float(v[0] @ v[best.id - 1000]), atol=1e-5)
    assert idx.kind == "flat" and len(idx) == 50


def test_remove_replace_and_exclude() -> None:
    v = _unit(20)
    idx = DuplicateIndex(32, rebuild_ratio=10.0)
    idx.add(range(20), v)
    assert idx.remove([3, 3, 999]) == 1
    assert 3 not in idx and len(idx) == 19
    assert all(n.id != 3 for n in idx.search(v[3:4], k=19)[0])
    assert idx.search(v[5:6], k=1, exclude=[5])[0][0].id != 5
    idx.add([7], v[0:1])  # id 7 now holds vector 0
    assert np.allclose(idx.vector(7), v[0]) and len(idx) == 19
    idx.add([3], v[3:4])  # a removed id may come back
    assert idx.search(v[3:4], k=1)[0][0].id == 3


def test_switches_to_hnsw_and_keeps_recall() -> None:
    v = _unit(3000, seed=1)
    idx = DuplicateIndex(32, approximate_from=1000)
    idx.add(range(500), v[:500])
    assert idx.kind == "flat"
    idx.add(range(500, 3000), v[500:])
    assert idx.kind == "hnsw"
    q = v[:200] + 0.05 * _unit(200, seed=2)
    exact = (q @ v.T).argsort(axis=1)[:, ::-1][:, :10]
    got = idx.search(q / np.linalg.norm(q, axis=1, keepdims=True), k=10)
    recall = np.mean([len(set(e) & {n.id for n in g}) / 10 for e, g in zip(exact, got, strict=True)])
    assert recall >= 0.95


def test_save_load_round_trip(tmp_path: Path) -> None:
    v = _unit(30)
    idx = DuplicateIndex(32)
    idx.add(range(100, 130), v)
    idx.remove([105])
    idx.save(tmp_path / "dup")
    back = DuplicateIndex.load(tmp_path / "dup")
    assert len(back) == 29 and 105 not in back and 106 in back
    assert [n.id for n in back.search(v[:2], k=3)[0]] == [n.id for n in idx.search(v[:2], k=3)[0]]
    with pytest.raises(ModelMissing, match="index rebuild"):
        DuplicateIndex.load(tmp_path / "none")


def test_bad_input() -> None:
    idx = DuplicateIndex(4)
    assert idx.search(np.ones((1, 4), dtype=np.float32))[0] == []
    with pytest.raises(InvalidInput):
        idx.add([1], np.ones((1, 5)))
    with pytest.raises(InvalidInput):
        idx.add([1, 1], np.ones((2, 4)))
    with pytest.raises(InvalidInput):
        idx.add([1], np.full((1, 4), np.nan))
    with pytest.raises(InvalidInput):
        idx.search(np.ones((1, 4)), k=0)


def test_ids_stay_stable_across_the_switch_to_hnsw_and_save_load(tmp_path: Path) -> None:
    v = _unit(400, seed=3)
    ids = np.arange(10_000, 10_400) * 7  # sparse, caller-chosen ids (case numbers)
    idx = DuplicateIndex(32, approximate_from=100, ef_search=64)
    idx.add(ids[:60], v[:60])
    flat_hits = [n.id for n in idx.search(v[:5], k=1)[0]]
    assert idx.kind == "flat" and flat_hits == [int(ids[0])]
    idx.add(ids[60:], v[60:])
    assert idx.kind == "hnsw" and len(idx) == 400
    assert [r[0].id for r in idx.search(v[:5], k=1)] == [int(i) for i in ids[:5]]
    assert set(idx.ids().tolist()) == set(ids.tolist())
    assert np.allclose(idx.vector(int(ids[123])), v[123], atol=1e-6)
    idx.save(tmp_path / "hnsw")
    back = DuplicateIndex.load(tmp_path / "hnsw")
    assert back.kind == "hnsw" and len(back) == 400
    q = _unit(20, seed=4)
    assert [[n.id for n in r] for r in back.search(q, k=5)] == [[n.id for n in r] for r in idx.search(q, k=5)]
    # the graph itself was saved: loading does not re-insert (insertion order would change the graph)
    assert back._index.ntotal == idx._index.ntotal


def test_hnsw_remove_is_a_tombstone_until_rebuild(tmp_path: Path) -> None:
    v = _unit(300, seed=5)
    idx = DuplicateIndex(32, approximate_from=50, rebuild_ratio=0.5)
    idx.add(range(300), v)
    assert idx.kind == "hnsw"
    assert idx.remove([5, 6, 7, 12345]) == 3
    assert len(idx) == 297 and 5 not in idx and 8 in idx
    assert idx._index.ntotal == 300  # still in the graph, filtered at query time
    hits = idx.search(v[5:8], k=3)
    assert all(n.id not in {5, 6, 7} for row in hits for n in row) and all(len(row) == 3 for row in hits)
    idx.save(tmp_path / "t")
    back = DuplicateIndex.load(tmp_path / "t")
    assert len(back) == 297 and 6 not in back
    assert all(n.id not in {5, 6, 7} for n in back.search(v[6:7], k=10)[0])
    idx.remove(range(100, 260))  # past rebuild_ratio: the graph is rebuilt without them
    assert idx._index.ntotal == len(idx) == 137 and idx.kind == "hnsw"
    idx.add([6], v[6:7])  # a removed id may come back
    assert idx.search(v[6:7], k=1)[0][0].id == 6
    idx.rebuild()
    assert idx.kind == "hnsw" and len(idx) == 138 and idx._index.ntotal == 138
