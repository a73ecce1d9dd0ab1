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
        self._chunks: list[np.ndarray] = []
        self._case_chunks: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None
        self._cases: np.ndarray = np.zeros(0, dtype=np.int64)

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
            self._chunks.append(vecs)
            self._case_chunks.append(np.asarray([r.case_id for r in rows], dtype=np.int64))
            self._last_id = rows[-1].id
            self._matrix = None
            return len(rows)

    def _snapshot(self) -> tuple[np.ndarray | None, np.ndarray]:
        with self._lock:
            if self._matrix is None and self._chunks:
                self._matrix = np.concatenate(self._chunks)
                self._cases = np.concatenate(self._case_chunks)
                self._chunks, self._case_chunks = [self._matrix], [self._cases]
            return self._matrix, self._cases

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
