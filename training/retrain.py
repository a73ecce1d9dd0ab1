"""Retrain the routing models from reviewed labels, evaluate, log to MLflow, register, and gate the champion.

One run: build the dataset (frozen slice out) -> encode -> train the supervised agency Router (and a
field Router when labels carry fields) -> evaluate the served mix (supervised + cold start) on the
evaluation slice, together with the current champion and cold start on the same slice -> choose the
auto-routing threshold for the target precision -> log params, metrics, confusion matrix and the
bundle folder to MLflow -> register a version -> move `champion` only if the gate passes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.dataset import Dataset, build_dataset, texts_and_agencies
from training.fit import ENCODE_BATCH, fit_router, new_router
from training.registry import ModelRegistry, VersionInfo
from triage.config import Settings
from triage.errors import InvalidInput
from triage.nlp.agencies import default_registry
from triage.nlp.agency_router import AgencyRouter, ColdStartRouter
from triage.nlp.artifacts import load
from triage.nlp.embed import Embedder
from triage.nlp.evaluation import precision_threshold, routing_metrics, top1_calibration_error
from triage.nlp.manifest import BUNDLE
from triage.nlp.model_bundle import Bundle, save_bundle
from triage.nlp.router import Router, _margins, softmax
from triage.store.db import Database

log = logging.getLogger("training.retrain")
Progress = Callable[[str, float], None]


def _quiet(_stage: str, _fraction: float) -> None:
    return None


@dataclass
class GateDecision:
    promoted: bool
    reasons: list[str]
    champion_version: int | None = None


def champion_gate(
    new: dict[str, Any], champion: dict[str, Any] | None, *, tolerance: float, min_support: int, max_drop: float
) -> GateDecision:
    """Promote only if macro F1 is not lower than the champion's (minus ``tolerance``) and no agency with
    at least ``min_support`` evaluation labels loses more than ``max_drop`` F1. Both sets of metrics
    must come from the same evaluation slice."""
    if champion is None:
        return GateDecision(True, ["no champion yet"])
    reasons: list[str] = []
    if new["macro_f1"] < champion["macro_f1"] - tolerance:
        reasons.append(
            f"macro F1 {new['macro_f1']:.4f} is lower than the champion's {champion['macro_f1']:.4f}"
            f" (tolerance {tolerance})"
        )
    for code, old in sorted(champion.get("per_agency", {}).items()):
        if old["support"] < min_support:
            continue
        now = new.get("per_agency", {}).get(code, {"f1": 0.0})
        if old["f1"] - now["f1"] > max_drop:
            reasons.append(f"{code}: F1 {now['f1']:.4f} vs champion {old['f1']:.4f} (drop > {max_drop})")
    if reasons:
        return GateDecision(False, reasons)
    return GateDecision(True, [f"macro F1 {new['macro_f1']:.4f} >= champion {champion['macro_f1']:.4f} - {tolerance}"])


@dataclass
class RetrainResult:
    """What a run did and why; ``version`` is None only when nothing could be registered."""

    run_id: str
    version: int | None
    promoted: bool
    reasons: list[str]
    metrics: dict[str, Any]
    champion_version: int | None
    champion_metrics: dict[str, Any] | None
    cold_start_metrics: dict[str, Any]
    calibration: dict[str, float]
    auto_route: dict[str, Any]
    dataset: dict[str, Any]
    field_metrics: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _encode(embedder: Embedder, texts: list[str], limit: int, progress: Progress, lo: float, hi: float) -> np.ndarray:
    """The opening ``limit`` characters of each text encoded (as the routers do), progress from ``lo`` to ``hi``."""
    parts = [np.zeros((0, embedder.dimension), dtype=np.float32)]
    for start in range(0, len(texts), ENCODE_BATCH):
        parts.append(embedder.encode([t[:limit] for t in texts[start : start + ENCODE_BATCH]]))
        progress("encoding", lo + (hi - lo) * min(1.0, (start + ENCODE_BATCH) / max(len(texts), 1)))
    return np.concatenate(parts)


def supervised_calibration(router: Router, texts: list[str], emb: np.ndarray, gold: list[str]) -> dict[str, float]:
    """ECE of the supervised router alone, before (softmax of raw SVM margins) and after calibration."""
    X = router._features(router._clip(texts), emb if router.embedding_dim_ else None, fit=False)
    calibrated = router.model_.predict_proba(X)
    inner = getattr(router.model_, "estimator_", None)
    raw = softmax(_margins(inner, X)) if inner is not None else calibrated
    return {
        "ece_supervised_raw": round(top1_calibration_error(raw, router.classes_, gold), 4),
        "ece_supervised_calibrated": round(top1_calibration_error(calibrated, router.classes_, gold), 4),
    }


def metric_key(label: str) -> str:
    """An MLflow-safe name for a class label: agency codes pass as they are; a readable Vietnamese field
    name ("Cán bộ, công chức, viên chức") has commas and diacritics MLflow refuses, so it becomes an ASCII
    slug plus a short hash of the label (two labels never share a key). metric_names.json maps back."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", label):
        return label
    folded = unicodedata.normalize("NFKD", label.replace("đ", "d").replace("Đ", "D"))
    slug = re.sub(r"[^A-Za-z0-9]+", "_", "".join(c for c in folded if not unicodedata.combining(c))).strip("_")
    return f"{slug[:60]}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"


def _flat_metrics(prefix: str, m: dict[str, Any]) -> dict[str, float]:
    out = {f"{prefix}{k}": float(v) for k, v in m.items() if isinstance(v, int | float) and k != "n"}
    for label, row in m.get("per_agency", {}).items():
        for key in ("precision", "recall", "f1", "support"):
            if key in row:
                out[f"{prefix}{key}_{metric_key(label)}"] = float(row[key])
    return out


def metric_names(*reports: dict[str, Any] | None) -> dict[str, str]:
    """Metric key -> the readable label it stands for, for every per-label row of ``reports``."""
    return {metric_key(label): label for m in reports if m for label in m.get("per_agency", {})}


def _confusion_png(confusion: dict[str, Any], path: Path) -> None:
    # Local: pyplot costs about a second of start-up and only a retrain draws.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, matrix = confusion["labels"], np.asarray(confusion["matrix"])
    size = max(4.0, 0.35 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reviewed label")
    for i, j in zip(*np.nonzero(matrix), strict=True):
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def retrain(
    settings: Settings,
    db: Database,
    *,
    embedder: Embedder,
    seed: Path | None = None,
    router_params: dict[str, Any] | None = None,
    created_by: str = "cli",
    progress: Progress | None = None,
    cold_start: ColdStartRouter | None = None,
    registry: ModelRegistry | None = None,
) -> RetrainResult:
    """One full retrain run (see the module docstring); raises InvalidInput when there is nothing to learn."""
    import mlflow

    say = progress or _quiet
    say("dataset", 0.02)
    with db.read() as s:
        ds: Dataset = build_dataset(s, seed=seed)
    if not ds.eval:
        raise InvalidInput(
            "the evaluation slice is empty: freeze one first with `triage eval-slice grow` "
            "(models are only compared on texts they were never trained on)"
        )
    train_texts, train_codes = texts_and_agencies(ds.train)
    if len(set(train_codes)) < 2:
        raise InvalidInput(f"need reviewed labels for at least two agencies outside the slice, got {set(train_codes)}")
    eval_texts, eval_codes = texts_and_agencies(ds.eval)
    # The served router ranks top-level bodies: a label naming a unit (BHXH, Cục Thuế) counts for its ministry.
    agencies = default_registry()
    eval_roots = [agencies.root(c).code if c in agencies else c for c in eval_codes]
    registry = registry or ModelRegistry(settings)

    # Trained exactly as the router benchmarks train it (training/fit.py): C and the embedding weight
    # are searched, not pinned. Texts are encoded once, for training and for the evaluation.
    params = router_params or {}
    limit = new_router(embedder, **params).embed_max_chars
    emb_train = _encode(embedder, train_texts, limit, say, 0.05, 0.35)
    emb_eval = _encode(embedder, eval_texts, limit, say, 0.35, 0.45)

    def fitting(stage: str, fraction: float) -> None:
        say(stage, 0.45 + 0.15 * fraction)

    supervised = fit_router(
        train_texts, train_codes, embedder=embedder, embeddings=emb_train, progress=fitting, **params
    )
    cold = cold_start or ColdStartRouter(embedder=embedder).fit()
    served = AgencyRouter(
        embedder=embedder, supervised=supervised, cold_start=cold, cold_start_weight=settings.cold_start_weight
    ).fit()
    field_router: Router | None = None
    field_rows = [r for r in ds.train if r.field]
    if len({r.field for r in field_rows}) >= 2:
        keep = [i for i, r in enumerate(ds.train) if r.field]
        field_router = fit_router(
            [r.text for r in field_rows],
            [str(r.field) for r in field_rows],
            embedder=embedder,
            embeddings=emb_train[keep],
            progress=fitting,
            **params,
        )

    say("evaluating", 0.65)
    proba = served.predict_proba(eval_texts, emb_eval)
    metrics = routing_metrics(proba, served.classes_, eval_roots)
    calibration = {"ece_served": metrics["ece"], **supervised_calibration(supervised, eval_texts, emb_eval, eval_codes)}
    pred = np.asarray(served.classes_)[proba.argmax(axis=1)]
    threshold = precision_threshold(proba.max(axis=1), pred == np.asarray(eval_roots), settings.auto_route_precision)
    cold_only = AgencyRouter(embedder=embedder, cold_start=cold).fit()
    cold_metrics = routing_metrics(cold_only.predict_proba(eval_texts, emb_eval), cold_only.classes_, eval_roots)
    field_metrics: dict[str, Any] | None = None
    if field_router is not None:
        idx = [i for i, r in enumerate(ds.eval) if r.field]
        if idx:
            fp = field_router.predict_proba([eval_texts[i] for i in idx], emb_eval[idx])
            field_metrics = routing_metrics(fp, field_router.classes_, [str(ds.eval[i].field) for i in idx])

    say("comparing with the champion", 0.75)
    champ: VersionInfo | None = registry.champion()
    champ_metrics: dict[str, Any] | None = None
    if champ is not None:
        bundle: Bundle = load(
            registry.download(champ),
            kinds=(BUNDLE,),
            embedder=embedder,
            cold_start_weight=settings.cold_start_weight,
            cold_start=cold,
        )
        cp = bundle.agency_router.predict_proba(eval_texts, emb_eval)
        champ_metrics = routing_metrics(cp, bundle.agency_router.classes_, eval_roots)
    decision = champion_gate(
        metrics,
        champ_metrics,
        tolerance=settings.gate_tolerance,
        min_support=settings.gate_min_support,
        max_drop=settings.gate_max_agency_drop,
    )

    say("logging to MLflow", 0.85)
    run_params: dict[str, Any] = {
        **{f"router_{k}": v for k, v in supervised.get_params().items() if k != "embedder"},
        "cold_start_weight": settings.cold_start_weight,
        "encoder": embedder.model_id,
        "field_router": field_router is not None,
        "router_chosen_C": supervised.C_,
        "router_chosen_embedding_weight": supervised.embedding_weight_,
        "router_search_rows": supervised.search_rows_,
        "gate_tolerance": settings.gate_tolerance,
        "gate_min_support": settings.gate_min_support,
        "gate_max_agency_drop": settings.gate_max_agency_drop,
        "auto_route_precision": settings.auto_route_precision,
        "data_hash": supervised.data_hash_[:16],
        "created_by": created_by,
        **{f"data_{k}": v for k, v in ds.summary().items()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bundle"
        card = {
            "created_by": created_by,
            "dataset": ds.summary(),
            "metrics": {k: v for k, v in metrics.items() if k not in ("confusion",)},
            "calibration": calibration,
            "auto_route": threshold.as_dict(),
            "encoder": embedder.model_id,
            "cold_start_weight": settings.cold_start_weight,
        }
        save_bundle(
            folder, supervised, field_router, card, metrics={k: metrics[k] for k in ("top1", "top3", "macro_f1", "ece")}
        )
        (Path(tmp) / "confusion_matrix.json").write_text(json.dumps(metrics["confusion"], ensure_ascii=False))
        gate: dict[str, Any] = {
            "promoted": decision.promoted,
            "reasons": decision.reasons,
            "champion_version": None if champ is None else champ.version,
            "champion_metrics": None
            if champ_metrics is None
            else {k: v for k, v in champ_metrics.items() if k != "confusion"},
        }
        (Path(tmp) / "gate.json").write_text(json.dumps(gate, indent=2, ensure_ascii=False))
        names = metric_names(metrics, cold_metrics, champ_metrics, field_metrics)
        (Path(tmp) / "metric_names.json").write_text(json.dumps(names, indent=2, ensure_ascii=False))
        _confusion_png(metrics["confusion"], Path(tmp) / "confusion_matrix.png")

        mlflow.set_tracking_uri(registry.uri)
        with mlflow.start_run(experiment_id=registry.experiment_id(), run_name=f"retrain-{created_by}") as run:
            mlflow.log_params({k: str(v)[:500] for k, v in run_params.items()})
            mlflow.log_metrics(_flat_metrics("", metrics))
            mlflow.log_metrics({**calibration, **_flat_metrics("cold_start_", cold_metrics)})
            if champ_metrics is not None:
                mlflow.log_metrics(_flat_metrics("champion_", champ_metrics))
            if field_metrics is not None:
                mlflow.log_metrics(_flat_metrics("field_", field_metrics))
            auto = {f"auto_{k}": float(v) for k, v in threshold.as_dict().items() if isinstance(v, int | float)}
            mlflow.log_metrics(auto)
            mlflow.log_artifact(str(Path(tmp) / "confusion_matrix.json"))
            mlflow.log_artifact(str(Path(tmp) / "gate.json"))
            mlflow.log_artifact(str(Path(tmp) / "metric_names.json"))
            mlflow.log_artifact(str(Path(tmp) / "confusion_matrix.png"))
            mlflow.log_artifacts(str(folder), artifact_path="bundle")
            source = mlflow.get_artifact_uri("bundle")
            run_id = run.info.run_id
            mlflow.set_tags(
                {"gate": "promoted" if decision.promoted else "refused", "reasons": "; ".join(decision.reasons)[:5000]}
            )
    version = registry.register(
        source=source,
        run_id=run_id,
        tags={
            "macro_f1": str(metrics["macro_f1"]),
            "top1": str(metrics["top1"]),
            "gate": "promoted" if decision.promoted else "refused",
            "reasons": "; ".join(decision.reasons)[:5000],
            "created_by": created_by,
        },
    )
    if decision.promoted:
        # Through the shared path, so the gate's own move is in the audit trail like a manual one.
        from training.promotion import promote

        promote(
            settings,
            db,
            version,
            actor=created_by,
            reason="champion gate: " + "; ".join(decision.reasons),
            registry=registry,
        )
    say("done", 1.0)
    log.warning(
        "retrain run %s -> version %s: %s (%s)",
        run_id,
        version,
        "promoted" if decision.promoted else "refused",
        "; ".join(decision.reasons),
    )
    return RetrainResult(
        run_id=run_id,
        version=version,
        promoted=decision.promoted,
        reasons=decision.reasons,
        metrics={k: v for k, v in metrics.items() if k != "confusion"},
        champion_version=None if champ is None else champ.version,
        champion_metrics=gate["champion_metrics"],
        cold_start_metrics={k: v for k, v in cold_metrics.items() if k not in ("confusion", "per_agency")},
        calibration=calibration,
        auto_route=threshold.as_dict(),
        dataset=ds.summary(),
        field_metrics=None if field_metrics is None else {k: v for k, v in field_metrics.items() if k != "confusion"},
        params={k: str(v) for k, v in run_params.items()},
    )
