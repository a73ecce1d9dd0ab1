"""Duplicate detection: the likely-duplicate threshold calibrated on vnPara, and retrieval among distractors.

*Threshold*: vnPara pairs (paraphrase or not) are split once, by a fixed seed, into a calibration
half and a held-out half. The threshold maximising F1 on the calibration half is the product's
``TRIAGE_DUPLICATE_THRESHOLD``; precision, recall and F1 are reported on the held-out half only
(and ROC-AUC of the cosine on both), next to TF-IDF cosine calibrated the same way.

*Retrieval*: every pair's ``text1`` queries a ``DuplicateIndex`` (the product's class and default
parameters) holding every ``text2`` plus real VNTC news sentences as distractors; recall@5 is the
share of queries whose own ``text2`` is among the 5 nearest. TF-IDF cosine over the same
collection is the same-run baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from benchmarks.common import load
from triage.embed import Embedder
from triage.text import normalize

Progress = Callable[[str], None]
SEED = 0


def best_f1_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """The score threshold (``score >= t`` is a duplicate) with the highest F1 on these pairs."""
    order = np.argsort(-scores)
    s, t = scores[order], y[order]
    tp = np.cumsum(t)
    fp = np.cumsum(1 - t)
    f1 = 2 * tp / (tp + fp + t.sum())
    last = np.r_[s[1:] != s[:-1], True]  # only cut between distinct scores
    i = int(np.argmax(np.where(last, f1, -1)))
    return float(s[i])


def at_threshold(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    pred = (scores >= threshold).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    return {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4)}


def calibrate(scores: np.ndarray, y: np.ndarray, calib: np.ndarray, held: np.ndarray) -> dict[str, Any]:
    threshold = best_f1_threshold(scores[calib], y[calib])
    return {
        "threshold": round(threshold, 4),
        "roc_auc_all": round(float(roc_auc_score(y, scores)), 4),
        "roc_auc_held_out": round(float(roc_auc_score(y[held], scores[held])), 4),
        "calibration_half": at_threshold(scores[calib], y[calib], threshold),
        "held_out": at_threshold(scores[held], y[held], threshold),
    }


def _vectors(texts: list[str], known: dict[str, np.ndarray], embedder: Embedder) -> np.ndarray:
    missing = sorted({t for t in texts if t not in known})
    if missing:
        for t, v in zip(missing, embedder.encode(missing), strict=True):
            known[t] = v
    return np.stack([known[t] for t in texts]).astype(np.float32)


def duplicates(embedder: Embedder, say: Progress, quick: bool = False) -> dict[str, Any]:
    from benchmarks.corpora import real_embeddings
    from triage.duplicates import DuplicateIndex

    rows = load("vnpara/pairs.jsonl", "text1")
    a = [r["text1"] for r in rows]
    b = [normalize(r["text2"]) for r in rows]
    y = np.asarray([int(r["paraphrase"]) for r in rows])
    perm = np.random.default_rng(SEED).permutation(len(rows))
    calib, held = np.sort(perm[: len(rows) // 2]), np.sort(perm[len(rows) // 2 :])

    say("duplicates: corpus embeddings (cache)")
    texts, vecs = real_embeddings(30_000 if quick else 150_000, verbose=True)
    known = {t.text: v for t, v in zip(texts, vecs, strict=True)}
    distractor_texts = [t.text for t in texts if t.source == "vntc"]
    distractors = np.stack([known[t] for t in distractor_texts]) if distractor_texts else np.zeros((0, 384))
    say(f"duplicates: {len(distractor_texts)} VNTC distractor sentences")
    ea, eb = _vectors(a, known, embedder), _vectors(b, known, embedder)
    cosine = (ea * eb).sum(axis=1)

    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(a + b)
    ta, tb = tfidf.transform(a), tfidf.transform(b)
    tf_cos = np.asarray(ta.multiply(tb).sum(axis=1)).ravel()

    # Retrieval: text1 -> its own text2 among all text2 and the distractors (text2 ids 0..n-1).
    say("duplicates: retrieval index")
    collection = np.concatenate([eb, distractors]).astype(np.float32)
    index = DuplicateIndex(collection.shape[1])  # the product's defaults (HNSW past 15,000)
    t0 = time.perf_counter()
    index.add(np.arange(len(collection)), collection)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = index.search(ea, k=5)
    search_ms = (time.perf_counter() - t0) / len(ea) * 1000
    found = np.asarray([i in {n.id for n in h} for i, h in enumerate(hits)])
    exact_top = np.argsort(-(ea @ collection.T), axis=1)[:, :5]
    exact_found = np.asarray([i in set(row.tolist()) for i, row in enumerate(exact_top)])

    say("duplicates: TF-IDF retrieval baseline")
    all_texts = b + distractor_texts
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(all_texts)
    coll_sparse = vec.transform(all_texts)
    q_sparse = vec.transform(a)
    tf_found = np.zeros(len(a), dtype=bool)
    for start in range(0, len(a), 256):
        sims = (q_sparse[start : start + 256] @ coll_sparse.T).toarray()
        top = np.argpartition(-sims, 5, axis=1)[:, :5]
        for j, row in enumerate(top):
            tf_found[start + j] = (start + j) in set(row.tolist())
    pos = y == 1

    def recall(mask: np.ndarray) -> dict[str, float]:
        return {"paraphrase_pairs": round(float(mask[pos].mean()), 4), "all_pairs": round(float(mask.mean()), 4)}

    return {
        "dataset": "vnPara + VNTC sentences",
        "protocol": (
            f"vnPara pairs split once by seed {SEED}: threshold = best F1 on the calibration half, "
            "metrics on the held-out half; retrieval: each text1 queries every text2 + VNTC distractor sentences"
        ),
        "n_pairs": len(rows),
        "positives": int(y.sum()),
        "calibration_pairs": len(calib),
        "held_out_pairs": len(held),
        "router": {"scorer": embedder.model_id, **calibrate(cosine, y, calib, held)},
        "baseline": {"scorer": "TF-IDF cosine (syllable 1-2 grams)", **calibrate(tf_cos, y, calib, held)},
        "retrieval": {
            "collection": len(collection),
            "distractors": len(distractor_texts),
            "index_kind": index.kind,
            "index_build_s": round(build_s, 2),
            "search_ms_per_query": round(search_ms, 3),
            "recall_at_5": recall(found),
            "recall_at_5_exact_search": recall(exact_found),
            "baseline_recall_at_5": recall(tf_found),
        },
    }
