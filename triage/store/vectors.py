"""Similar earlier cases by brute-force cosine over the stored submission embeddings.

The vectors live in the database (float32 bytes, one per submission), so every worker sees the same
cases; each process keeps an in-memory matrix and only reads rows added since its last look. It is
O(n) per query, fine for tens of thousands of cases; a faiss index replaces it behind the same
``search`` call (``triage.pipeline.SimilarIndex``).
"""

from __future__ import annotations

import threading

import numpy as np
from sqlalchemy import select

from triage.store.db import Database
from triage.store.models import Submission


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


class CaseVectors:
    """Submission embeddings of the database, searchable by case."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._last_id = 0
        # Append-only buffers with doubling capacity: adding a row costs O(1) amortised instead of
        # re-concatenating the whole matrix after every new submission.
        self._buffer: np.ndarray | None = None
        self._case_buffer = np.zeros(0, dtype=np.int64)
        self._size = 0

    def _append(self, vecs: np.ndarray, cases: np.ndarray) -> None:
        need = self._size + len(vecs)
        if self._buffer is None or need > len(self._buffer):
            capacity = max(need, 2 * (0 if self._buffer is None else len(self._buffer)), 1024)
            grown = np.empty((capacity, vecs.shape[1]), dtype=np.float32)
            grown_cases = np.empty(capacity, dtype=np.int64)
            if self._buffer is not None:
                grown[: self._size] = self._buffer[: self._size]
                grown_cases[: self._size] = self._case_buffer[: self._size]
            self._buffer, self._case_buffer = grown, grown_cases
        self._buffer[self._size : need] = vecs
        self._case_buffer[self._size : need] = cases
        self._size = need

    def refresh(self) -> int:
        """Read embeddings stored since the last call; returns how many were added."""
        with self._lock, self.db.read() as s:
            rows = s.execute(
                select(Submission.id, Submission.case_id, Submission.embedding)
                .where(Submission.id > self._last_id, Submission.embedding.is_not(None))
                .order_by(Submission.id)
            ).all()
            if not rows:
                return 0
            vecs = np.stack([from_bytes(r.embedding) for r in rows])
            self._append(vecs, np.asarray([r.case_id for r in rows], dtype=np.int64))
            self._last_id = rows[-1].id
            return len(rows)

    def _snapshot(self) -> tuple[np.ndarray | None, np.ndarray]:
        """Views of the filled part; rows are never rewritten, so readers need no copy."""
        with self._lock:
            if self._buffer is None or self._size == 0:
                return None, np.zeros(0, dtype=np.int64)
            return self._buffer[: self._size], self._case_buffer[: self._size]

    def search(self, vector: np.ndarray, k: int, *, exclude_case: int | None = None) -> list[tuple[int, float]]:
        """Top-``k`` earlier cases (best submission per case) with cosine scores, best first."""
        self.refresh()
        matrix, cases = self._snapshot()
        if matrix is None or k <= 0:
            return []
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        # Only the head of the ranking is needed: partition first (O(n)), sort just that head. A case
        # can hold several submissions, so take a few more rows than k before de-duplicating by case.
        head = min(len(scores), 4 * k + 1)
        top = np.argpartition(-scores, head - 1)[:head] if head < len(scores) else np.arange(len(scores))
        order = top[np.argsort(-scores[top])]
        if len({int(c) for c in cases[order]} - {exclude_case}) < k:
            order = np.argsort(-scores)  # many submissions per case in the head: fall back to a full sort
        best: dict[int, float] = {}
        for i in order:
            case = int(cases[i])
            if case == exclude_case or case in best:
                continue
            best[case] = float(scores[i])
            if len(best) >= k:
                break
        return list(best.items())
