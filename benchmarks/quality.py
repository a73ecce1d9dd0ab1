"""Quality benchmarks: the Router against TF-IDF + LinearSVC on the same splits, in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from benchmarks.common import Baseline, cached_embeddings, label_metrics, load
from training.fit import fit_router, new_router
from triage.nlp.agencies import default_registry
from triage.nlp.agency_router import AgencyRouter, ColdStartRouter
from triage.nlp.embed import Embedder
from triage.nlp.evaluation import top1_calibration_error, top_k_accuracy
from triage.nlp.router import warm_segmentation

Progress = Callable[[str], None]
# UIT-VSFC: the fine-tuning recipe chosen on a 10 % validation slice of train, never on dev
# (benchmarks/finetune_experiment.py, results/finetune_uit_vsfc_all_layers.json); three seeds
# averaged, because single runs of that recipe scored 0.8817 to 0.8929 on dev (members were never tuned on dev).
UIT_TUNED: dict[str, Any] = {
    "epochs": 3,
    "lr": 1e-4,
    "batch_size": 32,
    "max_length": 64,
    "train_layers": 0,
    "members": 3,
}


def _compare_split(
    embedder: Embedder,
    train_x: list[str],
    train_y: list[str],
    test_x: list[str],
    test_y: list[str],
    emb_train: np.ndarray,
    emb_test: np.ndarray,
) -> dict[str, Any]:
    t = time.perf_counter()
    router = fit_router(train_x, train_y, embedder=embedder, embeddings=emb_train)
    router_fit = time.perf_counter() - t
    proba = router.predict_proba(test_x, embeddings=emb_test)
    t = time.perf_counter()
    base = Baseline().fit(train_x, train_y)
    base_fit = time.perf_counter() - t
    return {
        "router": {
            **label_metrics(proba, router.classes_, test_y),
            "ece": round(top1_calibration_error(proba, router.classes_, test_y), 4),
            "fit_seconds": round(router_fit, 1),
            "chosen_C": router.C_,
            "C_out_of_fold_log_loss": {str(c): v for c, v in router.c_log_loss_.items()},
            "chosen_embedding_weight": router.embedding_weight_,
            "search_out_of_fold_log_loss": router.search_log_loss_,
            "search_rows": router.search_rows_,
        },
        "baseline": {**label_metrics(base.scores(test_x), base.classes_, test_y), "fit_seconds": round(base_fit, 1)},
        "n_train": len(train_x),
        "n_test": len(test_x),
    }


def train_test(
    name: str,
    embedder: Embedder,
    train: list[dict[str, Any]],
    test: list[dict[str, Any]],
    label: str,
    progress: Progress,
    tuned: dict[str, Any] | None = None,
    protocol: str = "train -> test",
) -> dict[str, Any]:
    """Fixed split: fit on train, score on test; ``tuned`` (TunedRouter parameters) adds that row too."""
    tx, ty = [r["text"] for r in train], [str(r[label]) for r in train]
    sx, sy = [r["text"] for r in test], [str(r[label]) for r in test]
    progress(f"{name}: segmenting {len(tx) + len(sx)} texts")
    warm_segmentation(tx + sx)
    progress(f"{name}: encoding {len(tx) + len(sx)} texts")
    emb = cached_embeddings(embedder, tx + sx, new_router(embedder).embed_texts)
    progress(f"{name}: training")
    out = _compare_split(embedder, tx, ty, sx, sy, emb[: len(tx)], emb[len(tx) :])
    if tuned is not None:
        out["router_finetuned"] = _tuned(tx, ty, sx, sy, tuned, progress)
    return {"dataset": name, "protocol": protocol, **out}


def _tuned(
    tx: list[str], ty: list[str], sx: list[str], sy: list[str], params: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """The TunedRouter (encoder fine-tuned on train, blended with the Router) on the same split."""
    from triage.nlp.tuned_router import TunedRouter

    progress(f"fine-tuning the encoder on {len(tx)} texts ({params})")
    t = time.perf_counter()
    model = TunedRouter(**params).fit(tx, ty)
    fit_s = time.perf_counter() - t
    proba = model.predict_proba(sx)
    return {
        **label_metrics(proba, model.classes_, sy),
        "ece": round(top1_calibration_error(proba, model.classes_, sy), 4),
        "fit_seconds": round(fit_s, 1),
        "params": {k: v for k, v in params.items() if k != "base_encoder"},
        "encoder_id": model.router_.embedder_id_,
    }


def cross_validated(
    name: str,
    embedder: Embedder,
    rows: list[dict[str, Any]],
    label: str,
    progress: Progress,
    folds: int = 5,
    agency: bool = False,
) -> dict[str, Any]:
    """Stratified k-fold CV (seed 0); ``agency`` uses the AgencyRouter (supervised + cold start)."""
    x = [r["text"] for r in rows]
    registry = default_registry()
    y = [registry.resolve(str(r[label])).code if agency else str(r[label]) for r in rows]
    warm_segmentation(x)
    progress(f"{name}: encoding {len(x)} texts")
    emb = new_router(embedder).embed_texts(x)
    cold = ColdStartRouter(embedder=embedder).fit() if agency else None
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    router_scores = np.zeros((len(x), 0))
    gold_all: list[str] = []
    parts: dict[str, list[Any]] = {"router": [], "baseline": []}
    ya = np.asarray(y)
    for k, (tr, te) in enumerate(skf.split(x, ya)):
        progress(f"{name}: fold {k + 1}/{folds}")
        trx, tex = [x[i] for i in tr], [x[i] for i in te]
        if agency:
            # The supervised part is the product's router, unfitted: AgencyRouter.fit trains a clone.
            model: Any = AgencyRouter(
                embedder=embedder, supervised=new_router(embedder), cold_start=cold, locality_weight=0.0
            ).fit(trx, list(ya[tr]), embeddings=emb[tr])
        else:
            model = fit_router(trx, list(ya[tr]), embedder=embedder, embeddings=emb[tr])
        proba = model.predict_proba(tex, embeddings=emb[te])
        base = Baseline().fit(trx, list(ya[tr]))
        parts["router"].append((proba, list(model.classes_)))
        parts["baseline"].append((base.scores(tex), list(base.classes_)))
        gold_all.extend(ya[te])
    del router_scores
    out: dict[str, Any] = {
        "dataset": name,
        "protocol": f"{folds}-fold stratified CV (seed 0)",
        "n": len(x),
        "n_labels": len(set(y)),
    }
    for key, chunks in parts.items():
        out[key] = _pooled_metrics(chunks, gold_all, calibrated=key == "router")
    return out


def _pooled_metrics(chunks: list[tuple[np.ndarray, list[str]]], gold: list[str], calibrated: bool) -> dict[str, Any]:
    """Metrics over all folds' predictions together (classes can differ between folds)."""
    classes = sorted({c for _, cls in chunks for c in cls} | set(gold))
    col = {c: j for j, c in enumerate(classes)}
    rows = []
    for scores, cls in chunks:
        full = np.full((scores.shape[0], len(classes)), -1e9 if not calibrated else 0.0)
        for j, c in enumerate(cls):
            full[:, col[c]] = scores[:, j]
        rows.append(full)
    mat = np.concatenate(rows)
    out = label_metrics(mat, classes, gold)
    if calibrated:
        out["ece"] = round(top1_calibration_error(mat, classes, gold), 4)
    return out


def cold_start(embedder: Embedder, progress: Progress) -> dict[str, Any]:
    """Zero-label agency routing on the Zalo questions (labels used only to score)."""
    rows = load("zalo_legal/agency_train.jsonl")
    registry = default_registry()
    x = [r["text"] for r in rows]
    gold = [registry.resolve(r["agency"]).code for r in rows]
    progress("cold start: scoring")
    emb = embedder.encode(x)

    def run(router: ColdStartRouter) -> dict[str, float]:
        proba = router.predict_proba(x, embeddings=emb)
        # A child body (BHXH under Bộ Tài chính) counts as its parent, as the labels do.
        cls = [registry.get(c).parent or c for c in router.classes_]
        return {
            "top1": round(top_k_accuracy(proba, cls, gold, 1), 4),
            "top3": round(top_k_accuracy(proba, cls, gold, 3), 4),
        }

    return {
        "dataset": "zalo_legal agency (no labels used)",
        "n": len(x),
        "n_candidates": len(registry.ministries()),
        "router": run(ColdStartRouter(embedder=embedder).fit()),
        "baseline": run(ColdStartRouter(embedder=None, mention_bonus=0.0).fit()),
        "baseline_is": "character TF-IDF similarity to the registry descriptions only",
        "chance_top1": round(1 / len(registry.ministries()), 4),
    }


def vnpara(embedder: Embedder, reference: Embedder | None, progress: Progress) -> dict[str, Any]:
    """ROC-AUC of `similar` (embedding cosine) on vnPara, against TF-IDF cosine."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    rows = load("vnpara/pairs.jsonl", "text1")
    for r in rows:
        from triage.nlp.text import normalize

        r["text2"] = normalize(r["text2"])
    a, b = [r["text1"] for r in rows], [r["text2"] for r in rows]
    y = np.asarray([int(r["paraphrase"]) for r in rows])
    progress("vnpara: encoding")

    def cos(e: Embedder) -> np.ndarray:
        ea, eb = e.encode(a), e.encode(b)
        return np.asarray((ea * eb).sum(axis=1))

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(a + b)
    va, vb = vec.transform(a), vec.transform(b)
    tfidf = np.asarray(va.multiply(vb).sum(axis=1)).ravel()
    out: dict[str, Any] = {
        "dataset": "vnPara",
        "n_pairs": len(rows),
        "positives": int(y.sum()),
        "router": {"roc_auc": round(float(roc_auc_score(y, cos(embedder))), 4), "scorer": embedder.model_id},
        "baseline": {"roc_auc": round(float(roc_auc_score(y, tfidf)), 4), "scorer": "TF-IDF cosine"},
    }
    if reference is not None:
        out["fp32_reference"] = {
            "roc_auc": round(float(roc_auc_score(y, cos(reference))), 4),
            "scorer": reference.model_id,
        }
    return out


def vntc(embedder: Embedder, progress: Progress, quick: bool) -> dict[str, Any]:
    """VNTC news topics: a fixed, stratified 20 % of train held out (seed 0)."""
    rows = load("vntc/train.jsonl.gz")
    if quick:
        rows, _ = train_test_split(rows, train_size=3000, random_state=0, stratify=[r["label"] for r in rows])
    train, test = train_test_split(rows, test_size=0.2, random_state=0, stratify=[r["label"] for r in rows])
    out = train_test("VNTC", embedder, train, test, "label", progress)
    out["protocol"] = "fixed stratified 20 % of train held out (seed 0)"
    return out
