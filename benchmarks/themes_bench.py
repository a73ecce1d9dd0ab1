"""Themes benchmark: emerging-topic detection on VNTC, clustering at scale, BERTopic side by side.

(a) **Emerging**: streams of real VNTC articles (first 240 characters) with timestamps spread over
    12 weeks, 6 articles per topic per week; in each run one topic triples in the last 2 weeks.
    Counted: how often the top-ranked theme is mostly that topic and significant; and, in streams
    without a burst, how many themes pass the significance bar (should be none).
(b) **Scale**: ``ThemeModel.cluster`` on ``n`` real texts' embeddings (``benchmarks.corpora``):
    time, themes, outlier share, adjusted Rand index across seeds; keywords timed apart.
(c) **BERTopic** 0.17.4 (UMAP + HDBSCAN + c-TF-IDF, ``language="multilingual"``) on the same
    precomputed embeddings: time, topics, outlier share, agreement with the VNTC topic labels.
    Skipped with a note when bertopic (the ``bench`` extra) is not installed.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score

from benchmarks.common import cached_embeddings, data_dir
from benchmarks.corpora import RealText
from triage.nlp.text import normalize
from triage.nlp.themes import ThemeModel, stability

Progress = Callable[[str], None]
START = date(2025, 1, 6)
WEEKS, PER_WEEK, CHARS, SAMPLE = 12, 15, 240, 6000


def vntc_sample(embedder: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A fixed random sample of VNTC articles (seed 0), first 240 characters, with cached embeddings."""
    with gzip.open(data_dir() / "vntc" / "train.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    idx = np.random.default_rng(0).permutation(len(rows))[:SAMPLE]
    texts = [normalize(rows[i]["text"])[:CHARS] for i in idx]
    labels = np.asarray([rows[i]["label"] for i in idx])
    return texts, labels, cached_embeddings(embedder, texts, embedder.encode)


def _stream(labels: np.ndarray, burst: str | None, seed: int) -> tuple[np.ndarray, list[date]]:
    rng = np.random.default_rng(seed)
    pools = {t: list(rng.permutation(np.flatnonzero(labels == t))) for t in sorted(set(labels))}
    idx, days = [], []
    for week in range(WEEKS):
        for topic, pool in pools.items():
            for _ in range(PER_WEEK * (3 if topic == burst and week >= WEEKS - 2 else 1)):
                idx.append(pool.pop())
                days.append(START + timedelta(days=7 * week + int(rng.integers(7))))
    return np.asarray(idx), days


def emerging_benchmark(
    texts: list[str], labels: np.ndarray, emb: np.ndarray, say: Progress, runs: int = 30, quiet_runs: int = 10
) -> dict[str, Any]:
    """Injected-burst recall (top-1 and significant) over ``runs`` streams; false alarms without a burst."""
    counts = Counter(labels)
    burstable = sorted(t for t, n in counts.items() if n >= PER_WEEK * (WEEKS + 4))
    rows = []
    for run in range(runs):
        burst = burstable[run % len(burstable)]
        idx, days = _stream(labels, burst, seed=run)
        model = ThemeModel(random_state=run, segmenter=str.split).fit(
            [texts[i] for i in idx], timestamps=days, embeddings=emb[idx]
        )
        ranked = model.emerging()
        top = ranked[0]
        major = Counter(labels[idx][model.labels_ == top.theme]).most_common(1)[0][0]
        rows.append(
            {
                "burst": burst,
                "top_is_burst": bool(major == burst),
                "top_significant": top.significant,
                "significant": sum(e.significant for e in ranked),
                "growth": top.growth,
                "q": round(top.q_value, 6),
            }
        )
        say(f"emerging run {run + 1}/{runs}: burst {burst}, top {major} q={top.q_value:.2g}")
    quiet = []
    for run in range(quiet_runs):
        idx, days = _stream(labels, None, seed=1000 + run)
        model = ThemeModel(random_state=run, segmenter=str.split).fit(
            [texts[i] for i in idx], timestamps=days, embeddings=emb[idx]
        )
        quiet.append(sum(e.significant for e in model.emerging()))
    hits = sum(r["top_is_burst"] and r["top_significant"] for r in rows)
    return {
        "stream": f"{WEEKS} weeks, {PER_WEEK} articles per topic per week, {len(counts)} topics, x3 in the last 2",
        "runs": runs,
        "injected_first_and_significant": hits,
        "injected_first": sum(r["top_is_burst"] for r in rows),
        "by_topic": {
            t: f"{sum(r['top_is_burst'] and r['top_significant'] for r in rows if r['burst'] == t)}/"
            f"{sum(r['burst'] == t for r in rows)}"
            for t in burstable
        },
        "quiet_runs": quiet_runs,
        "quiet_runs_with_any_significant": sum(q > 0 for q in quiet),
        "quiet_significant_themes_total": int(sum(quiet)),
        "runs_detail": rows,
    }


def scale_benchmark(
    corpus: Sequence[RealText], emb: np.ndarray, say: Progress, seeds: tuple[int, ...] = (0, 1, 2)
) -> dict[str, Any]:
    """Cluster real texts (embeddings given): time per seed, themes, outliers, ARI across seeds."""
    say(f"scale: {len(corpus)} real texts, embeddings {emb.shape}")
    st = stability(emb, seeds)
    say(f"scale: {st['seconds']} s per seed, {st['themes']} themes, outliers {st['outlier_share']}")
    t = time.perf_counter()
    model = ThemeModel(random_state=0).fit([c.text for c in corpus], embeddings=emb)
    fit_s = time.perf_counter() - t
    sources = Counter(c.source for c in corpus)
    return {
        "n": len(corpus),
        "sources": dict(sources),
        **_seed_summary(st),
        "fit_with_keywords_s": round(fit_s, 2),
        "ari_across_seeds_min": st["ari_min"],
        "example_themes": [t.label for t in model.themes_[:8]],
    }


def bertopic_side_by_side(texts: list[str], labels: np.ndarray, emb: np.ndarray, say: Progress) -> dict[str, Any]:
    """BERTopic and ThemeModel on the same texts and embeddings; agreement with the VNTC topics."""
    ours_t = time.perf_counter()
    ours = ThemeModel(random_state=0).fit(texts, embeddings=emb)
    ours_s = time.perf_counter() - ours_t
    out: dict[str, Any] = {
        "n": len(texts),
        "theme_model": {
            "seconds": round(ours_s, 2),
            "themes": len(ours.themes_),
            "outlier_share": round(ours.outlier_share_, 4),
            "ari_vs_topics": round(float(adjusted_rand_score(labels, ours.labels_)), 4),
            "stability": stability(emb, seeds=(0, 1, 2)),
            "example_keywords": [t.keywords[:5] for t in ours.themes_[:5]],
        },
    }
    try:
        from bertopic import BERTopic
    except ImportError:
        out["bertopic"] = {"skipped": "bertopic not installed (pip install -e .[bench])"}
        return out
    say(f"BERTopic on {len(texts)} texts")
    t = time.perf_counter()
    model = BERTopic(language="multilingual", calculate_probabilities=False, verbose=False)
    topics, _ = model.fit_transform(texts, embeddings=emb)
    secs = time.perf_counter() - t
    topics = np.asarray(topics)
    words = [[w for w, _ in model.get_topic(k)[:5]] for k in sorted(set(topics) - {-1})[:5]]
    out["bertopic"] = {
        "version": __import__("bertopic").__version__,
        "seconds": round(secs, 2),
        "topics": len(set(topics) - {-1}),
        "outlier_share": round(float(np.mean(topics == -1)), 4),
        "ari_vs_topics": round(float(adjusted_rand_score(labels, topics)), 4),
        "example_keywords": words,
        "settings": 'language="multilingual", defaults otherwise (UMAP 5-d, HDBSCAN min_cluster_size 10)',
    }
    out["ari_theme_model_vs_bertopic"] = round(float(adjusted_rand_score(ours.labels_, topics)), 4)
    return out


def resampled_timing(emb: np.ndarray, n: int, say: Progress, seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, Any]:
    """Clustering time at ``n`` when fewer real embeddings exist: the real vectors resampled with jitter.

    Only the time (and outlier share) is meaningful here; the texts are not new, so themes are not.
    """
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(emb), size=n)
    noise = rng.normal(scale=0.02, size=(n, emb.shape[1])).astype(np.float32)
    big = emb[pick] + noise
    big /= np.linalg.norm(big, axis=1, keepdims=True)
    st = stability(big, seeds)
    say(f"resampled {n}: {st['seconds']} s per seed, {st['themes']} themes")
    return {
        "n": n,
        "from_real_vectors": len(emb),
        "how": "real embeddings resampled with replacement + Gaussian jitter (sd 0.02), re-normalised; timing only",
        **_seed_summary(st),
    }


def _seed_summary(st: dict[str, Any]) -> dict[str, Any]:
    """The result fields both scale runs report, from one :func:`triage.nlp.themes.stability` call."""
    return {
        "cluster_s_median": round(float(np.median(st["seconds"])), 2),
        "cluster_s": st["seconds"],
        "themes": st["themes"][0],
        "outlier_share": st["outlier_share"][0],
        "ari_across_seeds_mean": st["ari_mean"],
    }


def cached_corpus_size(limit: int) -> int:
    """How many of the first ``limit`` corpus texts have cached embeddings (whole chunks), without encoding."""
    import hashlib

    from benchmarks.corpora import CACHE, CHUNK, _embedder, real_texts

    texts = real_texts(limit)
    model_id = str(getattr(_embedder(), "model_id", "encoder"))
    done = 0
    for start in range(0, len(texts), CHUNK):
        digest = hashlib.sha256(model_id.encode())
        for t in texts[start : start + CHUNK]:
            digest.update(t.text.encode("utf-8") + b"\x00")
        if not (CACHE / f"{digest.hexdigest()[:24]}.npy").exists():
            break
        done = min(len(texts), start + CHUNK)
    return done


def themes_benchmark(embedder: Any, say: Progress, quick: bool = False, scale_n: int = 100_000) -> dict[str, Any]:
    texts, labels, emb = vntc_sample(embedder)
    say(f"VNTC sample: {len(texts)} articles")
    result: dict[str, Any] = {
        "emerging": emerging_benchmark(texts, labels, emb, say, runs=6 if quick else 30, quiet_runs=3 if quick else 10)
    }
    result["bertopic_side_by_side"] = {"vntc_articles": bertopic_side_by_side(texts, labels, emb, say)}
    want = 10_000 if quick else scale_n
    have = cached_corpus_size(want)
    if have < want:
        say(f"only {have} of {want} corpus embeddings are cached (python -m benchmarks.corpora --n {want})")
        result["scale_note"] = f"asked {want} texts, {have} had cached embeddings; scale measured on {have}"
    if have:
        from benchmarks.corpora import real_embeddings

        corpus, vecs = real_embeddings(have)  # read once: the scale run, the resampling and BERTopic share them
        result["scale"] = scale_benchmark(corpus, vecs, say)
        if have < want:
            result["scale_timing_resampled"] = resampled_timing(vecs, want, say)
        # BERTopic side by side on the same texts as the scale run
        side = bertopic_side_by_side([c.text for c in corpus], np.asarray([c.source for c in corpus]), vecs, say)
        side["labels"] = "source data set of each text (ari_vs_topics compares with it)"
        result["bertopic_side_by_side"][f"corpus_{have}"] = side
    return result
