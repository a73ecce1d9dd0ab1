"""DuplicateIndex: nearest earlier submissions by embedding, with stable ids (faiss).

Exact inner-product search while the collection is small; past ``approximate_from`` vectors the
index switches to HNSW (sub-millisecond queries at high recall, see benchmarks). Vectors are
L2-normalised, so inner product is cosine. The raw vectors are kept beside the index so it can be
rebuilt (after removals, or when crossing to HNSW) without re-encoding anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from triage.errors import InvalidInput, ModelMissing

VECTORS_FILE = "vectors.npy"
IDS_FILE = "ids.npy"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Neighbour:
    """An earlier item and its cosine similarity to the query."""

    id: int
    score: float


class DuplicateIndex:
    """Stable-id vector index: ``add`` / ``remove`` / ``search`` / ``save`` / ``load``.

    HNSW cannot delete, so removals are tombstones filtered out of results and dropped at the
    next rebuild (triggered once tombstones exceed ``rebuild_ratio`` of the live vectors).
    """

    def __init__(
        self,
        dimension: int,
        *,
        approximate_from: int = 50_000,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        rebuild_ratio: float = 0.2,
        threads: int = 0,
    ) -> None:
        if dimension < 1:
            raise InvalidInput("dimension must be positive")
        self.dimension = dimension
        self.approximate_from = approximate_from
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.rebuild_ratio = rebuild_ratio
        self.threads = threads
        self._vectors = np.zeros((0, dimension), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._row: dict[int, int] = {}
        self._dead: set[int] = set()
        self._index: Any = None
        self._kind = "flat"
        self._indexed = 0  # rows of _vectors already in _index

    # ---- state -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._row) - len(self._dead)

    def __contains__(self, item: object) -> bool:
        return isinstance(item, int | np.integer) and int(item) in self._row and int(item) not in self._dead

    @property
    def kind(self) -> str:
        """'flat' (exact) or 'hnsw' (approximate)."""
        return self._kind

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self.dimension:
            raise InvalidInput(f"vectors must have shape (n, {self.dimension}), got {v.shape}")
        if not np.isfinite(v).all():
            raise InvalidInput("vectors contain NaN or infinity")
        return v

    def _new_index(self) -> Any:
        import faiss

        if self.threads:
            faiss.omp_set_num_threads(self.threads)
        if self._kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            return index
        return faiss.IndexFlatIP(self.dimension)

    def _rebuild(self) -> None:
        """Drop tombstones, pick the index kind for the live size, index every live vector."""
        if self._dead:
            keep = np.asarray([int(i) not in self._dead for i in self._ids], dtype=bool)
            self._vectors, self._ids = self._vectors[keep], self._ids[keep]
            self._row = {int(i): r for r, i in enumerate(self._ids)}
            self._dead = set()
        self._kind = "hnsw" if len(self._ids) >= self.approximate_from else "flat"
        self._index = self._new_index()
        if len(self._ids):
            self._index.add(self._vectors)
        self._indexed = len(self._ids)

    # ---- mutation ----------------------------------------------------------------------------
    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under caller-chosen ids (case or submission ids); an existing id is replaced."""
        v = self._check(vectors)
        id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(id_arr) != len(v):
            raise InvalidInput(f"{len(id_arr)} ids for {len(v)} vectors")
        if len(set(id_arr.tolist())) != len(id_arr):
            raise InvalidInput("ids must be unique within one add()")
        replaced = [int(i) for i in id_arr if int(i) in self._row and int(i) not in self._dead]
        if replaced:
            self.remove(replaced)
        revived = [int(i) for i in id_arr if int(i) in self._dead]
        if revived:  # an id removed earlier and added again: drop the old row first
            self._dead.difference_update(revived)
            keep = ~np.isin(self._ids, np.asarray(revived, dtype=np.int64))
            self._vectors, self._ids = self._vectors[keep], self._ids[keep]
            self._row = {int(i): r for r, i in enumerate(self._ids)}
            self._index = None
        start = len(self._ids)
        self._vectors = np.concatenate([self._vectors, v])
        self._ids = np.concatenate([self._ids, id_arr])
        for offset, i in enumerate(id_arr):
            self._row[int(i)] = start + offset
        crossing = self._kind == "flat" and len(self) >= self.approximate_from
        if self._index is None or crossing:
            self._rebuild()
        else:
            self._index.add(self._vectors[self._indexed :])
            self._indexed = len(self._ids)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Forget ids (unknown ones are ignored); returns how many were removed."""
        gone = {int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)} & (set(self._row) - self._dead)
        self._dead |= gone
        if self._dead and len(self._dead) > self.rebuild_ratio * max(len(self), 1):
            self._rebuild()
        return len(gone)

    # ---- queries -----------------------------------------------------------------------------
    def search(self, vectors: np.ndarray, k: int = 5, *, exclude: Sequence[int] = ()) -> list[list[Neighbour]]:
        """The k nearest live items per query row, best first; ``exclude`` drops ids (e.g. itself)."""
        if k < 1:
            raise InvalidInput("k must be >= 1")
        q = self._check(vectors)
        if len(self) == 0 or len(q) == 0:
            return [[] for _ in range(len(q))]
        skip = self._dead | {int(i) for i in exclude}
        want = min(k + len(skip), len(self._ids))
        scores, rows = self._index.search(q, want)
        out: list[list[Neighbour]] = []
        for srow, rrow in zip(scores, rows, strict=True):
            found: list[Neighbour] = []
            for s, r in zip(srow, rrow, strict=True):
                if r < 0:
                    continue
                item = int(self._ids[r])
                if item in skip:
                    continue
                found.append(Neighbour(item, float(s)))
                if len(found) == k:
                    break
            out.append(found)
        return out

    def vector(self, item: int) -> np.ndarray:
        """The stored vector of a live id."""
        if item not in self:
            raise InvalidInput(f"id {item} is not in the index")
        return np.asarray(self._vectors[self._row[int(item)]])

    # ---- persistence -------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write live vectors, ids and a manifest; the faiss index is rebuilt on load."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        live = np.asarray([int(i) not in self._dead for i in self._ids], dtype=bool)
        np.save(folder / VECTORS_FILE, self._vectors[live])
        np.save(folder / IDS_FILE, self._ids[live])
        manifest = {
            "kind": "duplicate_index",
            "dimension": self.dimension,
            "count": int(live.sum()),
            "index": "hnsw" if int(live.sum()) >= self.approximate_from else "flat",
            "params": {
                "approximate_from": self.approximate_from,
                "hnsw_m": self.hnsw_m,
                "ef_construction": self.ef_construction,
                "ef_search": self.ef_search,
            },
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        return folder

    @classmethod
    def load(cls, folder: Path) -> DuplicateIndex:
        folder = Path(folder)
        if not (folder / MANIFEST_FILE).exists():
            raise ModelMissing(f"no duplicate index at {folder}; build it with `triage index rebuild`")
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        index = cls(int(manifest["dimension"]), **manifest.get("params", {}))
        vectors, ids = np.load(folder / VECTORS_FILE), np.load(folder / IDS_FILE)
        if len(ids):
            index.add(ids, vectors)
        return index
