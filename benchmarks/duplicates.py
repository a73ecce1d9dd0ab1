"""Duplicate detection: the likely-duplicate threshold calibrated on vnPara, and retrieval among distractors.

*Threshold*: vnPara pairs (paraphrase or not) are split once, by a fixed seed, into a calibration
half and a held-out half. The threshold maximising F1 on the calibration half is the product's
``TRIAGE_DUPLICATE_THRESHOLD``; precision, recall and F1 are reported on the held-out half only
(and ROC-AUC of the cosine on both), next to TF-IDF cosine calibrated the same way.

*Retrieval*: every pair's ``text1`` queries a ``DuplicateIndex`` (the product's class and default
parameters) holding every ``text2`` plus real VNTC news sentences as distractors (other real texts of
the shared corpus while its VNTC part is not cached yet: ``distractor_sources`` says which); recall@5 is the
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
from triage.nlp.embed import Embedder
from triage.nlp.text import normalize

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


def duplicates(embedder: Embedder, say: Progress, quick: bool = False, cached_only: bool = False) -> dict[str, Any]:
    from benchmarks.common import cached_embeddings
    from benchmarks.corpora import real_embeddings, real_texts
    from benchmarks.index_scale import cached_real
    from triage.nlp.duplicates import DuplicateIndex

    rows = load("vnpara/pairs.jsonl", "text1")
    a = [r["text1"] for r in rows]
    b = [normalize(r["text2"]) for r in rows]
    y = np.asarray([int(r["paraphrase"]) for r in rows])
    perm = np.random.default_rng(SEED).permutation(len(rows))
    calib, held = np.sort(perm[: len(rows) // 2]), np.sort(perm[len(rows) // 2 :])

    say("duplicates: vnPara embeddings")
    ea = cached_embeddings(embedder, a, embedder.encode)
    eb = cached_embeddings(embedder, b, embedder.encode)
    cosine = (ea * eb).sum(axis=1)

    say("duplicates: corpus embeddings (cache)")
    n_corpus = 30_000 if quick else 150_000
    if cached_only:  # the prefix of the shared corpus cache already built (see benchmarks.corpora)
        vecs = cached_real(n_corpus, cached_only=True)
        texts = real_texts(len(vecs))
    else:
        texts, vecs = real_embeddings(n_corpus, verbose=True)
    pair_texts = set(a) | set(b)
    pool = [(t, v) for t, v in zip(texts, vecs, strict=True) if t.text not in pair_texts]
    vntc = [(t, v) for t, v in pool if t.source == "vntc"]
    chosen = vntc if len(vntc) >= 20_000 else pool  # VNTC sentences; other real texts while not yet cached
    distractor_texts = [t.text for t, _ in chosen]
    distractors = np.stack([v for _, v in chosen]) if chosen else np.zeros((0, ea.shape[1]), np.float32)
    sources: dict[str, int] = {}
    for t, _ in chosen:
        sources[t.source] = sources.get(t.source, 0) + 1
    say(f"duplicates: {len(distractor_texts)} distractors {sources}")

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
            "distractor_sources": sources,
            "index_kind": index.kind,
            "index_build_s": round(build_s, 2),
            "search_ms_per_query": round(search_ms, 3),
            "recall_at_5": recall(found),
            "recall_at_5_exact_search": recall(exact_found),
            "baseline_recall_at_5": recall(tf_found),
        },
    }


if __name__ == "__main__":
    import json
    import sys

    from benchmarks.common import write_result
    from triage.config import get_settings
    from triage.nlp.embed import OnnxEmbedder, default_encoder_path

    settings = get_settings()
    folder = settings.encoder_path or default_encoder_path(settings.model_dir)
    result = duplicates(
        OnnxEmbedder(folder, threads=settings.encoder_threads),
        lambda m: print(m, file=sys.stderr, flush=True),
        quick="--quick" in sys.argv,
        cached_only="--cached-only" in sys.argv,
    )
    result["quick"] = "--quick" in sys.argv
    if not result["quick"]:
        write_result("duplicates", result)
    print(json.dumps({k: result[k] for k in ("router", "baseline", "retrieval")}, indent=1))
