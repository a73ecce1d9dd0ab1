"""Similar earlier cases: a ``DuplicateIndex`` of case embeddings kept in step with the database.

One vector per case (its first submission's embedding), under the case id. The database stays the
source of truth: the index follows the audit trail, whose sequence numbers are handed out under
the chain's head lock and therefore in commit order (submission ids are not, on PostgreSQL, so a
reader following them could skip a row committed late). Each process reads the events after the
last one it saw: ``submit`` and ``suggest`` add the case's vector, ``merge`` removes the case folded
into another (its submissions now belong to the target). So every worker sees every case.

The index is saved under ``<data_dir>/index/cases`` with the last event it covers (sequence number
and hash): a restart loads it and reads only newer events. If that event is not in the database
any more with that hash (another database, or a restore), the index is rebuilt from the submissions.
``triage index rebuild`` does the same by hand.

Several workers share the data folder, so a save never writes where another can: each writes a
copy into a folder of its own (``cases.<pid>-<thread>-<random>``), then swaps the ``cases`` link to
it (``os.replace``: atomic), so a reader finds one whole index or the previous one, never a mix.
Searches wait on the index lock only for short steps: a save copies the index under it and writes
the copy outside it; a rebuild builds a new index aside and swaps it in under the lock.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from triage.errors import ModelMissing
from triage.nlp.duplicates import DuplicateIndex
from triage.store.db import Database
from triage.store.tables import Case, Event, Submission
from triage.store.vectors import from_bytes

if TYPE_CHECKING:
    from triage.config import Settings

log = logging.getLogger(__name__)
ADDS = ("submit", "suggest", "import")  # import: a case from the archive (``triage import``)
REMOVES = ("merge",)


def index_folder(settings: Settings) -> Path:
    return Path(settings.data_dir) / "index" / "cases"


class CaseIndex:
    """``search(vector, k, exclude_case)`` over every case with an embedding (``pipeline.SimilarIndex``)."""

    prune_after_s = 60.0  # a saved copy no link names is removed this long after it was written

    def __init__(self, db: Database, *, folder: Path | None = None, **index_params: Any) -> None:
        self.db = db
        self.folder = folder
        self.index_params = index_params
        self._index: DuplicateIndex | None = None  # created with the first vector (its dimension)
        self._last_seq = 0
        self._last_hash = ""
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> CaseIndex:
        return cls(
            db,
            folder=index_folder(settings),
            approximate_from=settings.index_approximate_from,
            hnsw_m=settings.index_hnsw_m,
            ef_construction=settings.index_ef_construction,
            ef_search=settings.index_ef_search,
        )

    def __len__(self) -> int:
        return 0 if self._index is None else len(self._index)

    @property
    def kind(self) -> str:
        return "flat" if self._index is None else self._index.kind

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def _add(self, ids: list[int], vectors: list[np.ndarray]) -> None:
        if not ids:
            return
        matrix = np.stack(vectors).astype(np.float32)
        if self._index is None:
            self._index = DuplicateIndex(matrix.shape[1], **self.index_params)
        self._index.add(ids, matrix)

    def _first_vectors(self, s: Any, case_ids: list[int] | None) -> tuple[list[int], list[np.ndarray]]:
        """Each case's first submission embedding (cases folded into another excluded)."""
        first = (
            select(Submission.case_id, func.min(Submission.id).label("sid"))
            .where(Submission.embedding.is_not(None))
            .group_by(Submission.case_id)
        )
        if case_ids is not None:
            first = first.where(Submission.case_id.in_(case_ids))
        sub = first.subquery()
        stmt = (
            select(Submission.case_id, Submission.embedding)
            .join(sub, Submission.id == sub.c.sid)
            .join(Case, Case.id == Submission.case_id)
            .where(Case.merged_into.is_(None))
            .order_by(Submission.case_id)
        )
        ids, vecs = [], []
        for case_id, blob in s.execute(stmt):
            ids.append(int(case_id))
            vecs.append(from_bytes(blob))
        return ids, vecs

    def _head(self, s: Any) -> tuple[int, str]:
        row = s.execute(select(Event.seq, Event.hash).order_by(Event.seq.desc()).limit(1)).first()
        return (0, "") if row is None else (int(row.seq), str(row.hash))

    # ---- building ----------------------------------------------------------------------------
    def rebuild(self) -> int:
        """Index every case from the database afresh; returns how many cases it holds.

        Built aside (searches go on against the current index meanwhile) and swapped in under the
        lock; events committed during the build are applied by the next ``refresh`` (adds and
        removals are idempotent, so one seen twice does no harm).
        """
        with self.db.read() as s:
            seq, digest = self._head(s)
            ids, vecs = self._first_vectors(s, None)
        fresh: DuplicateIndex | None = None
        for start in range(0, len(ids), 50_000):
            matrix = np.stack(vecs[start : start + 50_000]).astype(np.float32)
            if fresh is None:
                fresh = DuplicateIndex(matrix.shape[1], **self.index_params)
            fresh.add(ids[start : start + 50_000], matrix)
        if fresh is not None:
            fresh.rebuild()  # one pass builds the right kind for the final size
        with self._lock:
            self._index = fresh
            self._last_seq, self._last_hash = seq, digest
            return len(self)

    def refresh(self) -> int:
        """Apply the audit events after the last one seen; returns how many cases were added or removed."""
        with self._lock, self.db.read() as s:
            rows = s.execute(
                select(Event.seq, Event.hash, Event.case_id, Event.action)
                .where(Event.seq > self._last_seq, Event.action.in_(ADDS + REMOVES))
                .order_by(Event.seq)
            ).all()
            if not rows:
                return 0
            added = sorted({int(r.case_id) for r in rows if r.action in ADDS and r.case_id is not None})
            removed = sorted({int(r.case_id) for r in rows if r.action in REMOVES and r.case_id is not None})
            ids, vecs = self._first_vectors(s, added) if added else ([], [])
            self._add(ids, vecs)
            if removed and self._index is not None:
                self._index.remove(removed)
            self._last_seq, self._last_hash = int(rows[-1].seq), str(rows[-1].hash)
            return len(ids) + len(removed)

    # ---- persistence -------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write the index and the last event it covers (nothing to write before the first case).

        A copy taken under the lock is written to a folder of this writer's own, then the ``cases``
        link is swapped to it atomically; older copies are removed (see the module docstring).
        """
        with self._lock:
            if self.folder is None or self._index is None:
                return None
            snapshot = self._index.copy()
            extra = {"last_seq": self._last_seq, "last_hash": self._last_hash}
        folder = self.folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        mine = folder.with_name(f"{folder.name}.{os.getpid()}-{threading.get_ident()}-{secrets.token_hex(4)}")
        snapshot.save(mine, extra=extra)
        link = folder.with_name(f".{mine.name}.link")
        os.symlink(mine.name, link)  # relative: the data folder can move
        if folder.is_dir() and not folder.is_symlink():  # a folder saved in place by an older version
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(link, folder)
        self._prune(keep=mine)
        return folder

    def _prune(self, *, keep: Path) -> None:
        """Remove the copies the link no longer names, once finished for ``prune_after_s``.

        The grace keeps a copy that another worker finished but has not linked yet; a reader that
        resolved a copy removed under it rebuilds instead (``load``).
        """
        assert self.folder is not None
        now = time.time()
        current = self.folder.resolve()
        for old in self.folder.parent.glob(f"{self.folder.name}.*"):
            if old == keep or not old.is_dir():
                continue
            try:
                if now - old.stat().st_mtime >= self.prune_after_s and old.resolve() != current:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:  # removed by another worker meanwhile
                continue

    def load(self) -> bool:
        """Load the saved index if it matches this database (its last event is there, same hash)."""
        if self.folder is None:
            return False
        folder = self.folder.resolve()  # one copy throughout, even if another worker swaps the link meanwhile
        try:
            manifest = DuplicateIndex.manifest(folder)
        except ModelMissing:  # ModelIncompatible too: an unlisted or changed file means a rebuild
            return False
        seq, digest = int(manifest.get("last_seq", 0)), str(manifest.get("last_hash", ""))
        with self.db.read() as s:
            stored = s.scalar(select(Event.hash).where(Event.seq == seq)) if seq else ""
        if stored != digest:
            log.warning("the saved case index at %s is not from this database; rebuilding it", self.folder)
            return False
        params = {k: v for k, v in self.index_params.items() if k in ("ef_search", "approximate_from")}
        with self._lock:
            try:
                self._index = DuplicateIndex.load(folder, **params)
            except (ModelMissing, FileNotFoundError):  # pruned under us (a very old copy): rebuild instead
                return False
            self._last_seq, self._last_hash = seq, digest
        return True

    def open(self) -> CaseIndex:
        """Ready to serve: the saved index plus newer events, or a rebuild from the database."""
        if not self.load():
            self.rebuild()
        self.refresh()
        return self

    # ---- queries -----------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int, *, exclude_case: int | None = None) -> list[tuple[int, float]]:
        """Top-``k`` earlier cases with cosine scores, best first."""
        self.refresh()
        with self._lock:
            if self._index is None or k <= 0:
                return []
            exclude = () if exclude_case is None else (exclude_case,)
            hits = self._index.search(np.asarray(vector, dtype=np.float32)[None, :], k, exclude=exclude)[0]
        return [(h.id, h.score) for h in hits]

    def candidates(self, case_ids: list[int]) -> dict[int, tuple[str, np.ndarray]]:
        """Each indexed case's masked text (its stored suggestion's) and vector, for the same-matter scorer.

        Cases without a stored suggestion (never triaged) or not in the index are left out.
        """
        ids = sorted({int(c) for c in case_ids})
        if not ids:
            return {}
        with self.db.read() as s:
            rows = s.execute(select(Case.id, Case.suggestion).where(Case.id.in_(ids))).all()
        texts = {
            int(r.id): str(r.suggestion["masked_text"])
            for r in rows
            if isinstance(r.suggestion, dict) and r.suggestion.get("masked_text")
        }
        out: dict[int, tuple[str, np.ndarray]] = {}
        with self._lock:
            if self._index is None:
                return {}
            found = self._index.vectors(list(texts))
        for cid, vector in found.items():
            out[cid] = (texts[cid], vector)
        return out
