"""Training data from clerks' reviewed routes, with a frozen evaluation slice.

Every confirmed or corrected route is a ``ReviewedLabel``. The same text can be labelled more than
once (a case re-routed, a resubmission); texts are compared by a key of their normalised,
case-folded form and the latest decision wins. Optional public seed rows (a JSONL file, named in
the run) fill in where clerks have not labelled yet; a clerk's label always beats a seed row.

The evaluation slice is stored in the database (``eval_slice``): a stratified sample of reviewed
texts that is never trained on, so two models are always compared on the same questions. It only
grows, and only by explicit command (``triage eval-slice grow``), never as a side effect of training.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.errors import InvalidInput, NotFound
from triage.nlp.agencies import AgencyRegistry, default_registry
from triage.nlp.io import read_jsonl
from triage.nlp.text import normalize
from triage.store.tables import EvalSliceEntry, ReviewedLabel, User, utcnow

SEED_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def text_key(text: str) -> str:
    """The de-duplication key: SHA-256 of the normalised, case-folded text with whitespace collapsed."""
    folded = " ".join(normalize(text).casefold().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LabelRow:
    """One training or evaluation example: a text and the route a person (or a seed file) gave it."""

    text: str
    agency: str
    field: str | None
    kind: str
    reviewer: str
    at: datetime
    source: str  # "reviewed" or "seed:<file name>"
    key: str
    label_id: int | None = None


@dataclass
class Dataset:
    """Train and evaluation rows, de-duplicated; ``eval`` is exactly the frozen slice."""

    train: list[LabelRow]
    eval: list[LabelRow]
    seed: str | None = None
    duplicates_dropped: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What goes into the run's parameters: sizes, sources, the seed file."""
        return {
            "n_train": len(self.train),
            "n_eval": len(self.eval),
            "n_train_reviewed": sum(r.source == "reviewed" for r in self.train),
            "n_train_seed": sum(r.source != "reviewed" for r in self.train),
            "n_agencies_train": len({r.agency for r in self.train}),
            "n_agencies_eval": len({r.agency for r in self.eval}),
            "n_field_labels": sum(r.field is not None for r in self.train),
            "duplicates_dropped": self.duplicates_dropped,
            "seed": self.seed or "none",
        }


def reviewed_rows(session: Session) -> tuple[list[LabelRow], int]:
    """All reviewed labels, the latest per text; returns (rows, number of older duplicates dropped)."""
    query = (
        select(ReviewedLabel, User.username)
        .join(User, User.id == ReviewedLabel.reviewer_id)
        .order_by(ReviewedLabel.at, ReviewedLabel.id)
    )
    latest: dict[str, LabelRow] = {}
    total = 0
    for label, reviewer in session.execute(query):
        total += 1
        key = text_key(label.text)
        latest[key] = LabelRow(
            text=normalize(label.text),
            agency=label.agency_code,
            field=label.field,
            kind=label.kind,
            reviewer=reviewer,
            at=label.at,
            source="reviewed",
            key=key,
            label_id=label.id,
        )
    return list(latest.values()), total - len(latest)


def seed_rows(
    path: Path,
    *,
    text_field: str = "text",
    agency_field: str = "agency",
    field_field: str | None = None,
    registry: AgencyRegistry | None = None,
) -> list[LabelRow]:
    """Public seed rows from a JSONL file (agency names, aliases or codes are resolved to codes)."""
    registry = registry or default_registry()
    rows = []
    for n, row in enumerate(read_jsonl(path), start=1):
        text, agency = row.get(text_field), row.get(agency_field)
        if not isinstance(text, str) or not isinstance(agency, str) or not text.strip():
            raise InvalidInput(f"{path}:{n}: needs string fields {text_field!r} and {agency_field!r}")
        try:
            code = registry.resolve(agency).code
        except NotFound as exc:
            raise InvalidInput(f"{path}:{n}: {exc}") from None
        fld = row.get(field_field) if field_field else None
        rows.append(
            LabelRow(
                text=normalize(text),
                agency=code,
                field=str(fld) if fld else None,
                kind=str(row.get("kind") or "phan_anh"),
                reviewer="seed",
                at=SEED_TIME,
                source=f"seed:{path.name}",
                key=text_key(text),
            )
        )
    return rows


def slice_keys(session: Session) -> set[str]:
    """Keys of the texts in the frozen evaluation slice."""
    return set(session.scalars(select(EvalSliceEntry.text_key)))


def build_dataset(session: Session, *, seed: Path | None = None) -> Dataset:
    """Reviewed labels (plus optional seed rows) split by the frozen slice; nothing in the slice is trained on."""
    reviewed, dropped = reviewed_rows(session)
    frozen = slice_keys(session)
    seen = {r.key for r in reviewed}
    extra: list[LabelRow] = []
    if seed is not None:
        for row in seed_rows(seed):
            if row.key in seen:  # a clerk's decision on the same text wins; one seed row per text
                dropped += 1
                continue
            seen.add(row.key)
            extra.append(row)
    train = [r for r in reviewed + extra if r.key not in frozen]
    evaluation = [r for r in reviewed if r.key in frozen]
    return Dataset(train=train, eval=evaluation, seed=None if seed is None else str(seed), duplicates_dropped=dropped)


def grow_eval_slice(
    session: Session, *, fraction: float, actor: str, random_state: int = 0, min_labels: int = 2
) -> dict[str, int]:
    """Freeze about ``fraction`` of each agency's reviewed texts into the slice (stratified by agency).

    Only agencies with at least ``min_labels`` texts take part, and at least one text of each stays
    trainable, so a rare agency is never removed from training altogether. Returns the texts added per agency.
    """
    if not 0 < fraction < 1:
        raise InvalidInput(f"fraction must lie strictly between 0 and 1, got {fraction}")
    reviewed, _ = reviewed_rows(session)
    frozen = slice_keys(session)
    by_agency: dict[str, list[LabelRow]] = defaultdict(list)
    in_slice: dict[str, int] = defaultdict(int)
    for row in reviewed:
        if row.key in frozen:
            in_slice[row.agency] += 1
        else:
            by_agency[row.agency].append(row)
    rng = np.random.default_rng(random_state)
    added: dict[str, int] = {}
    now = utcnow()
    for agency in sorted(by_agency):
        candidates = sorted(by_agency[agency], key=lambda r: r.key)
        total = len(candidates) + in_slice[agency]
        if total < min_labels:
            continue
        want = round(fraction * total) - in_slice[agency]
        take = min(max(want, 0), len(candidates) - 1)
        if take <= 0:
            continue
        for i in sorted(rng.choice(len(candidates), size=take, replace=False)):
            row = candidates[int(i)]
            session.add(
                EvalSliceEntry(
                    text_key=row.key, agency_code=agency, label_id=row.label_id, added_by=actor, added_at=now
                )
            )
        added[agency] = take
    session.flush()
    if added:  # the slice decides what the gate measures: who changed it, and how, is on record
        audit.record(
            session,
            actor=actor,
            action="eval_slice",
            after={"how": "grow", "fraction": fraction, "added": added, "random_state": random_state},
        )
    return added


def slice_size(session: Session) -> int:
    return len(slice_keys(session))


def texts_and_agencies(rows: Sequence[LabelRow]) -> tuple[list[str], list[str]]:
    return [r.text for r in rows], [r.agency for r in rows]


def freeze_labels(session: Session, label_ids: Sequence[int], *, actor: str) -> int:
    """Freeze the texts of these reviewed labels into the slice (an explicit, hand-picked slice); returns how many."""
    frozen = slice_keys(session)
    added = 0
    for label in session.scalars(select(ReviewedLabel).where(ReviewedLabel.id.in_(list(label_ids)))):
        key = text_key(label.text)
        if key in frozen:
            continue
        frozen.add(key)
        session.add(EvalSliceEntry(text_key=key, agency_code=label.agency_code, label_id=label.id, added_by=actor))
        added += 1
    session.flush()
    if added:
        audit.record(
            session,
            actor=actor,
            action="eval_slice",
            after={"how": "freeze", "labels": sorted(label_ids), "added": added},
        )
    return added
