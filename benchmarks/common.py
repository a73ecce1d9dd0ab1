"""Shared pieces of the benchmarks: data loading, the baseline, metrics, timing, result files."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from triage.config import get_settings
from triage.errors import InvalidInput
from triage.nlp.evaluation import top_k_accuracy
from triage.nlp.io import read_jsonl
from triage.nlp.text import normalize

RESULTS = Path(__file__).resolve().parent / "results"


def data_dir() -> Path:
    """The shared public datasets; benchmarks cannot run without them."""
    d = get_settings().shared_data_dir
    if not d.exists():
        raise InvalidInput(f"benchmarks need the shared datasets at {d} (set TRIAGE_SHARED_DATA_DIR)")
    return d


def load(rel: str, text_field: str = "text") -> list[dict[str, Any]]:
    """Rows of a shared JSONL file with the text normalised once, as the product does."""
    rows = []
    for row in read_jsonl(data_dir() / rel):
        row[text_field] = normalize(row[text_field])
        rows.append(row)
    return rows


class Baseline:
    """TF-IDF (syllable 1-2 grams) + LinearSVC: the classic reference for Vietnamese text."""

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Baseline:
        self.vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        self.svm = LinearSVC(C=1.0).fit(self.vec.fit_transform(texts), labels)
        self.classes_ = self.svm.classes_
        return self

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        s = self.svm.decision_function(self.vec.transform(texts))
        return s if s.ndim == 2 else np.stack([-s, s], axis=1)


def label_metrics(scores: np.ndarray, classes: Sequence[Any] | np.ndarray, gold: Sequence[Any]) -> dict[str, float]:
    """Accuracy, weighted and macro F1, top-3 accuracy from a score matrix."""
    pred = np.asarray(classes)[scores.argmax(axis=1)]
    return {
        "accuracy": round(float(accuracy_score(gold, pred)), 4),
        "weighted_f1": round(float(f1_score(gold, pred, average="weighted")), 4),
        "macro_f1": round(float(f1_score(gold, pred, average="macro")), 4),
        "top3": round(top_k_accuracy(scores, classes, gold, 3), 4),
    }


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds (a noisy shared machine: never trust one run)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """benchmarks/results/<name>.json with the machine and time of the run."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "platform": platform.platform()},
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    return path


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cached_embeddings(embedder: Any, texts: Sequence[str], encode: Any) -> np.ndarray:
    """``encode(texts)``, kept on disk under var/bench-cache keyed by the model and the exact texts.

    A VNTC run encodes ~34,000 articles (most of its time); a run stopped half-way or repeated for
    another metric must not pay that again. The key covers every text, so any change re-encodes.
    """
    import hashlib

    digest = hashlib.sha256(str(getattr(embedder, "model_id", type(embedder).__name__)).encode())
    for t in texts:
        digest.update(t.encode("utf-8"))
        digest.update(b"\x00")
    path = Path(__file__).resolve().parents[1] / "var" / "bench-cache" / f"{digest.hexdigest()[:24]}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray(encode(texts), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors
