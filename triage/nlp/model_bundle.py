"""A trained routing bundle on disk: the supervised agency router, an optional field router, and its card.

Layout (what retraining writes and the model registry stores)::

    agency/        Router.save folder (supervised agency router, codes as labels)
    field/         Router.save folder, only when reviewed labels carried fields
    manifest.json  kind "bundle", format, and the card: version label, auto-routing threshold, evaluation

Bundles registered before the manifest protocol carry ``bundle.json`` instead; ``triage.nlp.manifest``
reads those. The service loads a bundle into ``Pipeline.swap_models``; nothing here knows about MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.nlp.agency_router import AgencyRouter, ColdStartRouter
from triage.nlp.embed import Embedder
from triage.nlp.manifest import BUNDLE, read_manifest, versions, write_manifest
from triage.nlp.router import Router

AGENCY, FIELD = "agency", "field"


@dataclass(frozen=True)
class Bundle:
    """Loaded models plus what the card says about them."""

    agency_router: AgencyRouter
    field_router: Router | None
    label: str  # e.g. "pakn-agency-router/v3"
    auto_threshold: float | None
    card: dict[str, Any]


def save_bundle(
    folder: Path,
    supervised: Router,
    field: Router | None,
    card: dict[str, Any],
    *,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write ``agency/`` (with ``metrics`` in its manifest), ``field/`` when given, and the card as the manifest."""
    folder = Path(folder)
    supervised.save(folder / AGENCY, metrics=metrics)
    if field is not None:
        field.save(folder / FIELD)
    write_manifest(folder, BUNDLE, {**card, "versions": versions()})
    return folder


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
    card = read_manifest(folder, BUNDLE)
    supervised = Router.load(folder / AGENCY, embedder=embedder)
    agency = AgencyRouter(
        embedder=embedder, supervised=supervised, cold_start=cold_start, cold_start_weight=cold_start_weight
    ).fit()
    field = Router.load(folder / FIELD, embedder=embedder) if (folder / FIELD).exists() else None
    threshold = (card.get("auto_route") or {}).get("threshold")
    return Bundle(
        agency_router=agency,
        field_router=field,
        label=label or str(card.get("label") or f"bundle-{supervised.data_hash_[:12]}"),
        auto_threshold=None if threshold is None else float(threshold),
        card=card,
    )
