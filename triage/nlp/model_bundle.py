"""A trained routing bundle on disk: the supervised agency router, an optional field router, and its card.

Layout (what retraining writes and the model registry stores)::

    agency/      Router.save folder (supervised agency router, codes as labels)
    field/       Router.save folder, only when reviewed labels carried fields
    bundle.json  version label, auto-routing threshold, evaluation summary

The service loads a bundle into ``Pipeline.swap_models``; nothing here knows about MLflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.errors import ModelMissing
from triage.nlp.agency_router import AgencyRouter, ColdStartRouter
from triage.nlp.embed import Embedder
from triage.nlp.router import Router

CARD = "bundle.json"


@dataclass(frozen=True)
class Bundle:
    """Loaded models plus what the card says about them."""

    agency_router: AgencyRouter
    field_router: Router | None
    label: str  # e.g. "pakn-agency-router/v3"
    auto_threshold: float | None
    card: dict[str, Any]


def write_card(folder: Path, card: dict[str, Any]) -> None:
    (Path(folder) / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False, default=str))


def read_card(folder: Path) -> dict[str, Any]:
    path = Path(folder) / CARD
    if not path.exists():
        raise ModelMissing(f"{folder} is not a routing bundle (no {CARD})")
    card: dict[str, Any] = json.loads(path.read_text())
    return card


def load_bundle(
    folder: Path,
    *,
    embedder: Embedder | None,
    cold_start_weight: float = 0.35,
    label: str | None = None,
    cold_start: ColdStartRouter | None = None,
) -> Bundle:
    """Load a bundle folder; ``label`` (e.g. the registry version) overrides the card's own."""
    folder = Path(folder)
    card = read_card(folder)
    supervised = Router.load(folder / "agency", embedder=embedder)
    agency = AgencyRouter(
        embedder=embedder, supervised=supervised, cold_start=cold_start, cold_start_weight=cold_start_weight
    ).fit()
    field = Router.load(folder / "field", embedder=embedder) if (folder / "field").exists() else None
    threshold = (card.get("auto_route") or {}).get("threshold")
    return Bundle(
        agency_router=agency,
        field_router=field,
        label=label or str(card.get("label") or f"bundle-{supervised.data_hash_[:12]}"),
        auto_threshold=None if threshold is None else float(threshold),
        card=card,
    )
