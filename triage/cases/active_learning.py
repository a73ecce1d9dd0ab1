"""The clerks' labelling queue: cases whose routing is most uncertain come first.

A case waiting for a clerk (state NEW) whose top two agencies are close (small margin) or whose
scores are spread out (high entropy) teaches the next model the most once a clerk routes it.
Only the top-3 scores are stored with a suggestion, so entropy lumps the remaining probability
into one bucket: it is a lower bound of the true entropy, and the ranking it gives is what counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.cases.workflow import CaseState
from triage.nlp.evaluation import margin_and_entropy
from triage.store.tables import Case

Measure = Literal["margin", "entropy"]
SCAN_LIMIT = 5_000


@dataclass(frozen=True)
class UncertainCase:
    case_id: int
    top_agency: str | None
    top_score: float
    margin: float
    entropy: float
    model_version: str | None


def uncertainty_of(scores: list[float]) -> tuple[float, float]:
    """(margin, normalised entropy) from the stored top-k scores plus the rest lumped together."""
    top = [max(0.0, float(s)) for s in scores]
    if not top:
        return 0.0, 1.0
    rest = max(0.0, 1.0 - sum(top))
    p = np.asarray([*top, rest] if rest > 1e-9 else top)
    margin = margin_and_entropy(np.asarray([top]))[0][0]  # the lumped rest is no agency, never the runner-up
    entropy = margin_and_entropy((p / p.sum())[None, :])[1][0]
    return round(float(margin), 6), round(float(entropy), 6)


def uncertain_cases(session: Session, *, by: Measure = "margin", limit: int = 50) -> list[UncertainCase]:
    """NEW cases with a suggestion, most uncertain first (smallest margin, or highest entropy)."""
    query = select(Case.id, Case.suggestion, Case.model_version).where(
        Case.state == CaseState.NEW.value, Case.suggestion.is_not(None)
    )
    rows = session.execute(query.order_by(Case.id.desc()).limit(SCAN_LIMIT)).all()
    out = []
    for cid, sug, version in rows:
        agencies = (sug or {}).get("agencies") or []
        margin, entropy = uncertainty_of([a.get("score", 0.0) for a in agencies])
        out.append(
            UncertainCase(
                case_id=cid,
                top_agency=agencies[0].get("code") if agencies else None,
                top_score=float(agencies[0].get("score", 0.0)) if agencies else 0.0,
                margin=margin,
                entropy=entropy,
                model_version=version,
            )
        )
    out.sort(key=(lambda u: (u.margin, -u.case_id)) if by == "margin" else (lambda u: (-u.entropy, -u.case_id)))
    return out[:limit]
