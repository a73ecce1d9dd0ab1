"""Learning-curve simulation: from cold start to a trained router, one batch of clerk decisions at a time.

Everything goes through the product's own path: each Zalo question arrives as a submission
(``intake.receive``), a clerk routes it (``Casework.route`` writes the reviewed label), and after
each batch of 100 labels ``training.retrain.retrain`` builds the dataset from the database, trains,
evaluates on the frozen slice, logs an MLflow run, registers a version and applies the champion gate.
The slice (a stratified 20 % of the questions, chosen once with a fixed seed) is labelled first and
frozen by hand-picked ids, so every point is measured on the same questions. The baseline in the same
run is TF-IDF + LinearSVC trained on the same labels at each point.

The MLflow store is kept at ``var/bench-learning-curve/`` for ``mlflow ui``.
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, Baseline, load
from triage.cases.accounts import Principal, Role, create_user
from triage.cases.casework import Casework
from triage.cases.intake import NewSubmission, receive
from triage.config import Settings, get_settings
from triage.nlp.agencies import default_registry
from triage.nlp.agency_router import AgencyRouter, ColdStartRouter
from triage.nlp.embed import Embedder
from triage.nlp.evaluation import routing_metrics, top_k_accuracy
from triage.store.db import Database, init_db
from triage.store.tables import ReviewedLabel

Progress = Callable[[str], None]
TITLE = "Hỏi về quy định pháp luật"
# The checkout's var/ (git-ignored): benchmarks run from a source checkout, never from an installed package.
WORK = Path(__file__).resolve().parents[1] / "var" / "bench-learning-curve"


def _split(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A stratified evaluation slice (agencies with one question stay in training) and the shuffled rest."""
    rng = np.random.default_rng(seed)
    by: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by[r["code"]].append(i)
    eval_idx: list[int] = []
    for code in sorted(by):
        idx = by[code]
        take = min(len(idx) - 1, round(fraction * len(idx)))
        eval_idx += [int(i) for i in rng.choice(idx, size=take, replace=False)] if take > 0 else []
    chosen = set(eval_idx)
    train_idx = [i for i in rng.permutation(len(rows)) if int(i) not in chosen]
    return sorted(eval_idx), [int(i) for i in train_idx]


def _route_all(db: Database, clerk: Principal, rows: list[dict[str, Any]]) -> list[int]:
    """Receive each question as a submission and route it as the clerk; returns the reviewed label ids."""
    ids = []
    for r in rows:
        receipt = receive(db, NewSubmission(kind="kien_nghi", submitter_type="citizen", title=TITLE, content=r["text"]))
        with db.session() as s:
            Casework(s, clerk).route(receipt.case_id, agency=r["code"])
            label = s.query(ReviewedLabel).filter_by(case_id=receipt.case_id).one()
            ids.append(label.id)
    return ids


def _plot(points: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    n = [p["n_labels"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, style in (("top1", "o-"), ("top3", "s-"), ("macro_f1", "^-")):
        ax.plot(n, [p["router"][key] for p in points], style, label=f"router {key}")
    ax.plot(n, [p["baseline"]["top1"] for p in points], "o--", color="grey", label="TF-IDF+SVM top1")
    ax.plot(n, [p["baseline"]["macro_f1"] for p in points], "^--", color="silver", label="TF-IDF+SVM macro_f1")
    ax.set_xlabel("reviewed labels (0 = cold start)")
    ax.set_ylabel("score on the frozen slice")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Zalo legal questions -> ministry: learning curve")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def learning_curve(
    embedder: Embedder, progress: Progress, *, quick: bool = False, batch: int = 100, seed: int = 13
) -> dict[str, Any]:
    """Run the simulation; ``quick`` stops after two batches."""
    from training.dataset import freeze_labels
    from training.retrain import retrain

    registry = default_registry()
    rows = load("zalo_legal/agency_train.jsonl")
    for r in rows:
        r["code"] = registry.resolve(r["agency"]).code
    eval_idx, train_idx = _split(rows, 0.2, seed)
    if quick:
        train_idx = train_idx[: 2 * batch]
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    base = get_settings()
    settings = Settings(
        encoder_path=base.encoder_path,
        model_dir=base.model_dir,
        data_dir=WORK,
        database_url=f"sqlite:///{WORK / 'triage.db'}",
        registry_model="pakn-agency-router",
    )
    db = Database(f"sqlite:///{WORK / 'triage.db'}")
    init_db(db)
    with db.session() as s:
        user = create_user(s, username="clerk-bench", password="mật-khẩu-đủ-dài-123", role="clerk")
        clerk = Principal(user_id=user.id, username=user.username, role=Role.CLERK)

    progress(f"learning curve: freezing {len(eval_idx)} slice questions")
    slice_ids = _route_all(db, clerk, [rows[i] for i in eval_idx])
    with db.session() as s:
        freeze_labels(s, slice_ids, actor="benchmark")
    eval_texts = [f"{TITLE}. {rows[i]['text']}" for i in eval_idx]
    eval_gold = [rows[i]["code"] for i in eval_idx]
    eval_emb = embedder.encode([t[:1000] for t in eval_texts])

    cold = ColdStartRouter(embedder=embedder).fit()
    cold_router = AgencyRouter(embedder=embedder, cold_start=cold).fit()
    cold_m = routing_metrics(cold_router.predict_proba(eval_texts, eval_emb), cold_router.classes_, eval_gold)
    zero = {k: cold_m[k] for k in ("top1", "top3", "macro_f1", "ece")}
    points: list[dict[str, Any]] = [
        {"n_labels": 0, "router": zero, "baseline": {"top1": None, "top3": None, "macro_f1": None}, "promoted": None}
    ]
    fed: list[int] = []
    for start in range(0, len(train_idx), batch):
        chunk = train_idx[start : start + batch]
        progress(f"learning curve: clerks route {len(chunk)} more ({start + len(chunk)} labels)")
        _route_all(db, clerk, [rows[i] for i in chunk])
        fed += chunk
        t0 = time.perf_counter()
        result = retrain(settings, db, embedder=embedder, created_by="benchmark", cold_start=cold)
        seconds = time.perf_counter() - t0
        texts = [f"{TITLE}. {rows[i]['text']}" for i in fed]
        labels = [rows[i]["code"] for i in fed]
        bl = Baseline().fit(texts, labels)
        scores = bl.scores(eval_texts)
        bm = routing_metrics(scores, bl.classes_, eval_gold)
        m = result.metrics
        points.append(
            {
                "n_labels": len(fed),
                "router": {k: m[k] for k in ("top1", "top3", "macro_f1", "weighted_f1", "ece")},
                "calibration": result.calibration,
                "auto_route": result.auto_route,
                "baseline": {
                    "top1": bm["top1"],
                    "top3": round(top_k_accuracy(scores, bl.classes_, eval_gold, 3), 4),
                    "macro_f1": bm["macro_f1"],
                },
                "registered_version": result.version,
                "promoted": result.promoted,
                "gate_reasons": result.reasons,
                "mlflow_run_id": result.run_id,
                "retrain_seconds": round(seconds, 1),
            }
        )
        progress(f"  {len(fed)} labels: top1 {m['top1']} top3 {m['top3']} macro F1 {m['macro_f1']}")
    db.dispose()
    png = RESULTS / "learning_curve.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    plotted = _plot(points, png)
    return {
        "dataset": "zalo_legal/agency_train.jsonl (issuing ministry of each legal question)",
        "n_rows": len(rows),
        "n_eval_slice": len(eval_idx),
        "batch": batch,
        "seed": seed,
        "protocol": (
            "submissions via intake.receive, routed by a clerk via Casework.route (reviewed labels in SQLite); "
            "retrain after each batch (MLflow run + registry version + champion gate); fixed stratified 20 % slice"
        ),
        "baseline_is": "TF-IDF (syllable 1-2 grams) + LinearSVC on the same labels",
        "mlflow": {"tracking_uri": f"sqlite:///{WORK / 'mlflow.db'}", "artifacts": str(WORK / "mlruns")},
        "plot": str(png.relative_to(RESULTS.parent.parent)) if plotted else None,
        "points": points,
    }
