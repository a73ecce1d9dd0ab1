"""DuplicateIndex: nearest earlier items by embedding, with stable int64 ids (faiss).

Exact inner product (``IndexIDMap2`` over ``IndexFlatIP``) while the collection is small; from
``approximate_from`` live vectors on, HNSW (``IndexIDMap2`` over ``IndexHNSWFlat``): on 1M e5
vectors (606k real texts + neighbour-derived ones) M=48, efConstruction 200, efSearch 96 gave
recall@10 0.980 at p50 0.95 ms per query on one thread (M=32/efConstruction 100 needs efSearch 128 for
0.972 at 1.06 ms, but builds in 13 min instead of 33 on 2 cores), the best recall per millisecond of the types
measured (``benchmarks/index_scale.py``), where exact search costs ~57 ms. Vectors are
L2-normalised, so inner product is cosine. Ids are the caller's (case ids): they survive save/load
and the switch from exact to HNSW, because both index kinds carry the id map and a rebuild re-adds
the same ids.

The HNSW graph cannot delete, so removals there are tombstones: filtered out of results, and
dropped at the next rebuild (once they exceed ``rebuild_ratio`` of the live vectors). The flat
index deletes for real. Stored vectors are read back from the index itself for rebuilds, so no
second copy of them is kept in memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from triage.errors import InvalidInput
from triage.nlp.manifest import DUPLICATE_INDEX, read_manifest, write_manifest

INDEX_FILE = "index.faiss"
DEAD_FILE = "tombstones.npy"
FLAT, HNSW = "flat", "hnsw"


@dataclass(frozen=True)
class Neighbour:
    """An earlier item and its cosine similarity to the query."""

    id: int
    score: float


class DuplicateIndex:
    """Stable-id vector index: ``add`` / ``remove`` / ``search`` / ``save`` / ``load`` / ``rebuild``."""

    def __init__(
        self,
        dimension: int,
        *,
        approximate_from: int = 15_000,
        hnsw_m: int = 48,
        ef_construction: int = 200,
        ef_search: int = 96,
        rebuild_ratio: float = 0.2,
        threads: int = 0,
    ) -> None:
        if dimension < 1:
            raise InvalidInput("dimension must be positive")
        if approximate_from < 1:
            raise InvalidInput("approximate_from must be positive")
        self.dimension = dimension
        self.approximate_from = approximate_from
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.rebuild_ratio = rebuild_ratio
        self.threads = threads
        self._dead: set[int] = set()
        self._dead_selector: Any = None  # cached IDSelector of the tombstones (None: rebuild it)
        self._kind = FLAT
        self._index: Any = self._new_index(FLAT)

    # ---- state -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._dead)

    def _stored_ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def ids(self) -> np.ndarray:
        """Every live id (in insertion order)."""
        stored = self._stored_ids()
        if not self._dead:
            return stored
        return stored[~np.isin(stored, np.fromiter(self._dead, dtype=np.int64))]

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, int | np.integer) or int(item) in self._dead:
            return False
        return bool(np.any(self._stored_ids() == int(item)))

    @property
    def kind(self) -> str:
        """'flat' (exact) or 'hnsw' (approximate)."""
        return self._kind

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != self.dimension:
            raise InvalidInput(f"vectors must have shape (n, {self.dimension}), got {v.shape}")
        if not np.isfinite(v).all():
            raise InvalidInput("vectors contain NaN or infinity")
        return v

    def _new_index(self, kind: str) -> Any:
        if self.threads:
            faiss.omp_set_num_threads(self.threads)
        inner: Any
        if kind == HNSW:
            inner = faiss.IndexHNSWFlat(self.dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        else:
            inner = faiss.IndexFlatIP(self.dimension)
        return faiss.IndexIDMap2(inner)  # the Python wrapper keeps ``inner`` alive with the map

    def _stored(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything in the faiss index, tombstoned rows included."""
        ids = self._stored_ids()
        n = len(ids)
        vectors = self._index.index.reconstruct_n(0, n) if n else np.zeros((0, self.dimension), np.float32)
        return ids, np.asarray(vectors, dtype=np.float32)

    def rebuild(self, *, kind: str | None = None) -> None:
        """Drop tombstones and re-index every live vector under the same ids (kind by live size)."""
        ids, vectors = self._stored()
        if self._dead:
            keep = ~np.isin(ids, np.fromiter(self._dead, dtype=np.int64))
            ids, vectors = ids[keep], vectors[keep]
            self._dead = set()
        self._dead_selector = None
        self._kind = kind or (HNSW if len(ids) >= self.approximate_from else FLAT)
        self._index = self._new_index(self._kind)
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    # ---- mutation ----------------------------------------------------------------------------
    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under caller-chosen ids (case ids); an id already present is replaced."""
        v = self._check(vectors)
        id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(id_arr) != len(v):
            raise InvalidInput(f"{len(id_arr)} ids for {len(v)} vectors")
        if len(np.unique(id_arr)) != len(id_arr):
            raise InvalidInput("ids must be unique within one add()")
        if len(id_arr) == 0:
            return
        present = id_arr[np.isin(id_arr, self._stored_ids())]
        if len(present):  # replace (or revive) an id: its old row must go first
            self._drop(present)
        self._index.add_with_ids(v, id_arr)
        if self._kind == FLAT and len(self) >= self.approximate_from:
            self.rebuild()

    def _drop(self, ids: np.ndarray) -> None:
        """Physically remove ids: at once from a flat index, by a rebuild from an HNSW one."""
        if self._kind == FLAT:
            self._index.remove_ids(faiss.IDSelectorBatch(ids))
        else:
            self._dead.update(int(i) for i in ids)
            self.rebuild(kind=HNSW)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Forget ids (unknown ones are ignored); returns how many were removed."""
        wanted = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        stored = self._stored_ids()
        gone = [int(i) for i in wanted[np.isin(wanted, stored)] if int(i) not in self._dead]
        if not gone:
            return 0
        if self._kind == FLAT:
            self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(gone, dtype=np.int64)))
        else:
            self._dead.update(gone)
            self._dead_selector = None
            if len(self._dead) > self.rebuild_ratio * max(len(self), 1):
                self.rebuild()
        return len(gone)

    # ---- queries -----------------------------------------------------------------------------
    def _params(self) -> Any:
        """Search parameters that filter tombstones inside faiss (no over-fetching past them)."""
        fs: Any = faiss  # the bundled stubs lack the search-parameter classes
        if not self._dead:
            return None
        if self._dead_selector is None:
            batch = fs.IDSelectorBatch(np.fromiter(self._dead, dtype=np.int64))
            self._dead_selector = (batch, fs.IDSelectorNot(batch))  # keep ``batch`` alive too
        sel = self._dead_selector[1]
        if self._kind == HNSW:
            return fs.SearchParametersHNSW(sel=sel, efSearch=self.ef_search)
        return fs.SearchParameters(sel=sel)

    def search(self, vectors: np.ndarray, k: int = 5, *, exclude: Sequence[int] = ()) -> list[list[Neighbour]]:
        """The k nearest live items per query row, best first; ``exclude`` drops ids (e.g. itself)."""
        if k < 1:
            raise InvalidInput("k must be >= 1")
        q = self._check(vectors)
        live = len(self)
        if live == 0 or len(q) == 0:
            return [[] for _ in range(len(q))]
        skip = {int(i) for i in exclude}
        want = min(k + len(skip), live)
        scores, found_ids = self._index.search(q, want, params=self._params())
        out: list[list[Neighbour]] = []
        for srow, irow in zip(scores, found_ids, strict=True):
            found: list[Neighbour] = []
            for s, i in zip(srow, irow, strict=True):
                if i < 0 or int(i) in skip or int(i) in self._dead:
                    continue
                found.append(Neighbour(int(i), float(s)))
                if len(found) == k:
                    break
            out.append(found)
        return out

    def vector(self, item: int) -> np.ndarray:
        """The stored vector of a live id."""
        if item not in self:
            raise InvalidInput(f"id {item} is not in the index")
        return np.asarray(self._index.reconstruct(int(item)), dtype=np.float32)

    def vectors(self, items: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of the live ids among ``items`` (unknown or removed ones are left out).

        Looked up through the id map one by one, without listing every stored id (``vector`` does),
        so re-scoring a query's few candidates costs the same on a million cases as on ten.
        """
        out: dict[int, np.ndarray] = {}
        for item in items:
            i = int(item)
            if i in self._dead or i in out:
                continue
            try:
                out[i] = np.asarray(self._index.reconstruct(i), dtype=np.float32)
            except RuntimeError:  # not in the id map
                continue
        return out

    def copy(self) -> DuplicateIndex:
        """An independent copy (the faiss index cloned): saved or rebuilt while this one keeps serving."""
        twin = DuplicateIndex(self.dimension, **self.params(), threads=self.threads)
        twin._index = faiss.clone_index(self._index)
        twin._kind = self._kind
        twin._dead = set(self._dead)
        return twin

    # ---- persistence -------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {
            "approximate_from": self.approximate_from,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "rebuild_ratio": self.rebuild_ratio,
        }

    def save(self, folder: Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write the faiss index (ids and, for HNSW, the graph), tombstones and a manifest.

        Written to temporary names and renamed, so a reader never sees half an index.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        mine = f"{os.getpid()}-{threading.get_ident()}.tmp"  # two writers never share a temporary name
        tmp = folder / f"{INDEX_FILE}.{mine}"
        faiss.write_index(self._index, str(tmp))
        tmp.replace(folder / INDEX_FILE)
        dead_tmp = folder / f"{DEAD_FILE}.{mine}"
        with dead_tmp.open("wb") as fh:
            np.save(fh, np.asarray(sorted(self._dead), dtype=np.int64))
        dead_tmp.replace(folder / DEAD_FILE)
        fields = {
            "dimension": self.dimension,
            "count": len(self),
            "index": self._kind,
            "params": self.params(),
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **(extra or {}),
        }
        write_manifest(folder, DUPLICATE_INDEX, fields)  # last: a reader finds the index it names
        return folder

    @staticmethod
    def manifest(folder: Path) -> dict[str, Any]:
        """The saved index's manifest (``ModelMissing`` when there is none, ``ModelIncompatible`` when unreadable)."""
        return read_manifest(folder, DUPLICATE_INDEX)

    @classmethod
    def load(cls, folder: Path, **overrides: Any) -> DuplicateIndex:
        """The saved index as it was (same ids, same HNSW graph); ``overrides`` replace saved params."""
        folder = Path(folder)
        manifest = cls.manifest(folder)
        index = cls(int(manifest["dimension"]), **{**manifest.get("params", {}), **overrides})
        loaded = faiss.read_index(str(folder / INDEX_FILE))
        if int(loaded.d) != index.dimension:
            raise InvalidInput(f"index at {folder} has dimension {loaded.d}, manifest says {index.dimension}")
        index._index = loaded  # an IndexIDMap2 owning its inner index (flat or HNSW graph)
        index._kind = manifest.get("index", FLAT)
        if index._kind == HNSW:
            inner: Any = faiss.downcast_index(index._index.index)
            inner.hnsw.efSearch = index.ef_search
        dead = folder / DEAD_FILE
        index._dead = {int(i) for i in np.load(dead)} if dead.exists() else set()
        return index
