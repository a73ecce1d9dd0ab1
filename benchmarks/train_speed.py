"""Training speed on VNTC news articles: what `triage train` costs on an archive of long texts.

The product's one training path (``training.fit.fit_router``, as `triage train` calls it: raw texts,
a cold segmentation cache, the encoder and its budget, the C search) runs on the ``vntc`` benchmark's
split (a fixed stratified 20 % of train held out, seed 0) and is timed by stage; its held-out accuracy
is set beside the TF-IDF + LinearSVC baseline fitted in the same run and beside the router the ``vntc``
benchmark trains with the embedding (read from its last result, which took about an hour). The time
for the whole file (33,759 articles) is the measured time scaled by the row count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sklearn.model_selection import train_test_split

from benchmarks.common import RESULTS, Baseline, _cpus, label_metrics, load
from training.fit import encoder_chars, fit_router
from triage.config import get_settings
from triage.nlp.embed import Embedder
from triage.nlp.evaluation import top1_calibration_error
from triage.nlp.router import clear_segmentation_cache

Progress = Callable[[str], None]
PER = 10_000
VNTC_ALL = 33_759  # articles in vntc/train.jsonl.gz: what `triage train` on the whole file sees
TARGET_S = 15 * 60
ACCURACY_TOLERANCE = 0.005


class _Stages:
    """Seconds spent in each stage ``fit_router`` reports (segmenting, encoding, training)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stage: str | None = None
        self._since = time.perf_counter()

    def __call__(self, stage: str, _fraction: float) -> None:
        if stage != self._stage:
            self.close()
            self._stage = stage

    def close(self) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.seconds[self._stage] = round(self.seconds.get(self._stage, 0.0) + now - self._since, 1)
        self._since = now
        self._stage = None


def _reference() -> dict[str, Any] | None:
    """The router trained with the embedding by the last full ``vntc`` run (the accuracy to hold)."""
    path = RESULTS / "vntc.json"
    if not path.exists():
        return None
    r = json.loads(path.read_text(encoding="utf-8"))
    if r.get("quick"):
        return None
    return {"accuracy": r["router"]["accuracy"], "fit_seconds": r["router"]["fit_seconds"], "run_at": r["run_at"]}


def train_speed(embedder: Embedder, progress: Progress, quick: bool = False) -> dict[str, Any]:
    """`triage train`'s path on the VNTC split, timed by stage (see the module docstring)."""
    rows = load("vntc/train.jsonl.gz")
    if quick:
        rows, _ = train_test_split(rows, train_size=3000, random_state=0, stratify=[r["label"] for r in rows])
    train, test = train_test_split(rows, test_size=0.2, random_state=0, stratify=[r["label"] for r in rows])
    tx, ty = [r["text"] for r in train], [str(r["label"]) for r in train]
    sx, sy = [r["text"] for r in test], [str(r["label"]) for r in test]

    clear_segmentation_cache()  # as in a fresh `triage train` process, whatever ran before in this one
    progress(f"train speed: `triage train`'s path on {len(tx)} articles")
    stages = _Stages()
    t = time.perf_counter()
    router = fit_router(tx, ty, embedder=embedder, progress=stages)
    total_s = time.perf_counter() - t
    stages.close()
    proba = router.predict_proba(sx)
    scored = {
        **label_metrics(proba, router.classes_, sy),
        "ece": round(top1_calibration_error(proba, router.classes_, sy), 4),
        "embedding_block": bool(router.embedding_dim_),
        "chosen_C": router.C_,
        "search_rows": router.search_rows_,
        "search_out_of_fold_log_loss": router.search_log_loss_,
        "fit_stages_seconds": router.timings_,
        "n_jobs": router.n_jobs,
    }

    progress(f"train speed: baseline on {len(tx)} articles")
    t = time.perf_counter()
    base = Baseline().fit(tx, ty)
    base_s = time.perf_counter() - t
    baseline = {**label_metrics(base.scores(sx), base.classes_, sy), "fit_seconds": round(base_s, 1)}

    reference = None if quick else _reference()
    per_10k = {k: round(v * PER / len(tx), 1) for k, v in stages.seconds.items()}
    per_10k["total"] = round(total_s * PER / len(tx), 1)
    whole = round(total_s * VNTC_ALL / len(tx))
    out: dict[str, Any] = {
        "dataset": "VNTC",
        "protocol": (
            "the vntc benchmark's split (fixed stratified 20 % of train held out, seed 0); training_path = "
            "training.fit.fit_router from raw texts with a cold segmentation cache and the default settings, "
            "as `triage train` runs it; baseline = TF-IDF + LinearSVC in the same run; reference = the router "
            "with the embedding block from the last full vntc run"
        ),
        "n_train": len(tx),
        "n_test": len(sx),
        "mean_chars_train": round(sum(map(len, tx)) / max(len(tx), 1)),
        "encoder_chars": encoder_chars(router, tx),
        "embed_budget_chars": get_settings().train_embed_budget_chars,
        "cpus": _cpus(),
        "training_seconds": round(total_s, 1),
        "stages_seconds": stages.seconds,
        "seconds_per_10k_texts": per_10k,
        "router": scored,
        "baseline": baseline,
        "reference_router_with_embedding": reference,
        "whole_file_33759_articles": {
            "seconds": whole,
            "target_seconds": TARGET_S,
            "note": "measured on the split's train part, scaled by the row count",
        },
    }
    if reference:
        out["accuracy_minus_reference"] = round(scored["accuracy"] - reference["accuracy"], 4)
        out["within_tolerance"] = bool(out["accuracy_minus_reference"] >= -ACCURACY_TOLERANCE)
    return out
