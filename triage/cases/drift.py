"""Weekly drift report: has what clerks route changed, and is the router less sure of new submissions?

Label shift compares the agency distribution of reviewed labels in the latest weeks with the weeks
before them (Jensen-Shannon divergence in bits and PSI). Confidence drift compares the top agency
score of the suggestions made for cases received in the same two windows: a drop means new
submissions look less like what the models learned, often before clerks' labels show it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.nlp.evaluation import js_divergence, population_stability_index
from triage.store.tables import Case, ReviewedLabel

PSI_SHIFT = 0.25
CONFIDENCE_DROP = 0.05


def _top_score(suggestion: dict[str, Any] | None) -> float | None:
    agencies = (suggestion or {}).get("agencies") or []
    return float(agencies[0]["score"]) if agencies else None


def _conf(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "median": None}
    arr = np.asarray(values)
    return {"n": len(values), "mean": round(float(arr.mean()), 4), "median": round(float(np.median(arr)), 4)}


def drift_report(session: Session, *, now: datetime, recent_weeks: int = 1, reference_weeks: int = 8) -> dict[str, Any]:
    """Label-distribution shift and confidence drop, latest ``recent_weeks`` vs the ``reference_weeks`` before."""
    split = now - timedelta(weeks=recent_weeks)
    start = split - timedelta(weeks=reference_weeks)
    labels = session.execute(
        select(ReviewedLabel.agency_code, ReviewedLabel.at).where(ReviewedLabel.at >= start, ReviewedLabel.at < now)
    ).all()
    ref_labels = Counter(code for code, at in labels if at < split)
    new_labels = Counter(code for code, at in labels if at >= split)
    codes = sorted(set(ref_labels) | set(new_labels))
    ref = np.asarray([ref_labels[c] for c in codes], dtype=float)
    new = np.asarray([new_labels[c] for c in codes], dtype=float)
    label_part: dict[str, Any] = {"reference_n": int(ref.sum()), "recent_n": int(new.sum())}
    if ref.sum() and new.sum():
        share_ref, share_new = ref / ref.sum(), new / new.sum()
        moves: list[dict[str, Any]] = sorted(
            (
                {"agency": c, "reference": round(float(a), 4), "recent": round(float(b), 4)}
                for c, a, b in zip(codes, share_ref, share_new, strict=True)
            ),
            key=lambda m: -abs(float(m["recent"]) - float(m["reference"])),
        )
        psi = population_stability_index(ref, new)
        label_part.update(
            js_divergence_bits=round(js_divergence(ref, new), 4),
            psi=round(psi, 4),
            shifted=psi > PSI_SHIFT,
            largest_moves=moves[:5],
        )
    cases = session.execute(
        select(Case.received_at, Case.suggestion).where(Case.received_at >= start, Case.received_at < now)
    ).all()
    ref_conf = [s for at, sug in cases if at < split and (s := _top_score(sug)) is not None]
    new_conf = [s for at, sug in cases if at >= split and (s := _top_score(sug)) is not None]
    conf_part: dict[str, Any] = {"reference": _conf(ref_conf), "recent": _conf(new_conf)}
    if ref_conf and new_conf:
        drop = float(np.mean(ref_conf) - np.mean(new_conf))
        conf_part.update(drop=round(drop, 4), dropped=drop > CONFIDENCE_DROP)
    weekly: dict[str, dict[str, Any]] = {}
    for _code, at in labels:
        week = f"{at.isocalendar().year}-W{at.isocalendar().week:02d}"
        weekly.setdefault(week, {"labels": 0, "cases": 0, "scores": []})["labels"] += 1
    for at, sug in cases:
        week = f"{at.isocalendar().year}-W{at.isocalendar().week:02d}"
        row = weekly.setdefault(week, {"labels": 0, "cases": 0, "scores": []})
        row["cases"] += 1
        if (s := _top_score(sug)) is not None:
            row["scores"].append(s)
    weeks = [
        {
            "week": w,
            "labels": r["labels"],
            "cases": r["cases"],
            "mean_confidence": round(float(np.mean(r["scores"])), 4) if r["scores"] else None,
        }
        for w, r in sorted(weekly.items())
    ]
    return {
        "as_of": now.isoformat(timespec="seconds"),
        "recent": {"from": split.isoformat(timespec="seconds"), "weeks": recent_weeks},
        "reference": {"from": start.isoformat(timespec="seconds"), "weeks": reference_weeks},
        "labels": label_part,
        "confidence": conf_part,
        "weeks": weeks,
    }
