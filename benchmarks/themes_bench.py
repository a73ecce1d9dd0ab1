"""Themes benchmark: stable, actionable themes on real text, each figure beside today's model.

Every figure is measured for :class:`~triage.nlp.themes.ThemeModel` (deterministic principal-
direction bisection + Lloyd, centred embeddings, catch-all split) and, in the same run, for the
baseline :class:`SeededThemeModel` (the model before issue 21: PCA + MiniBatchKMeans over 4x the
themes with a seed, merged by Ward). Embeddings are the default encoder's, computed once and
cached under ``var/bench-cache`` (clustering times exclude encoding).

(a) **Seeds**: adjusted Rand index (ARI) between the themes of 5 seeds on the first 40,000 texts of
    ``benchmarks.corpora``; and, since a deterministic model is seed-proof by construction, ARI
    between 5 random 90 % subsamples (on the texts two subsamples share): how much the themes
    move when the data do.
(b) **Overlapping periods**: the 6,000-article VNTC sample spread over 16 weeks; weeks 1-12 and
    5-16 clustered apart; ARI on the 8 shared weeks; the second period fitted with the first's
    themes as ``known``: how many of its themes keep an id, and how alike matched themes are.
(c) **VNTC topics**: NMI (and ARI) of the themes against the 10 topics, beside BERTopic 0.17.4
    (UMAP + HDBSCAN, ``language="multilingual"``, UMAP seed 42) on the same texts and embeddings.
(d) **Public-service questions** (``dvc_faq`` train + dev, 1,713): the largest theme's share,
    NMI against the catalogue field of each question's procedure (field given, else looked up in
    the packaged catalogue; questions with no field left out of the NMI) and against the ministry,
    beside BERTopic; example labels with segmented keywords (underthesea).
(e) **Emerging**: streams of VNTC articles over 12 weeks, 15 per topic per week; in each of 30
    runs one topic triples in the last 2 weeks: is the top theme mostly that topic and significant;
    10 streams without a burst: how many themes pass the bar (should be none).
(f) **Scale**: clustering time of 100,000 real texts (median of 3), embeddings given; when fewer
    are cached, real vectors resampled with jitter (timing only, noted).
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from itertools import combinations
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from benchmarks.common import cached_embeddings, data_dir
from triage.nlp.catalogue import default_catalogue
from triage.nlp.text import normalize
from triage.nlp.themes import OUTLIER, ThemeModel

Progress = Callable[[str], None]
START = date(2025, 1, 6)
WEEKS, PER_WEEK, CHARS, SAMPLE = 12, 15, 240, 6000
SEEDS = (0, 1, 2, 3, 4)


class SeededThemeModel(ThemeModel):
    """Today's model (before issue 21), the baseline: PCA, seeded MiniBatchKMeans, Ward merge, outliers."""

    def _theme_count(self, n: int) -> int:
        return int(np.clip(round(math.sqrt(n) / 2.5), 2, 60))

    def cluster(self, embeddings: np.ndarray, init: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The baseline's clustering; it has no way to start from earlier themes (``init`` is ignored)."""
        from sklearn.cluster import AgglomerativeClustering, MiniBatchKMeans
        from sklearn.decomposition import PCA

        x = np.asarray(embeddings, dtype=np.float32)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        n = len(x)
        n_themes = self._theme_count(n)
        dims = min(50, x.shape[1], max(1, n - 1))
        reduced = PCA(n_components=dims, svd_solver="randomized", random_state=self.random_state).fit_transform(x)
        k0 = self.over_clusters or min(max(4 * n_themes, 20), 400)
        k0 = max(n_themes, min(k0, n // 3 if n >= 3 * n_themes else n))
        km = MiniBatchKMeans(
            n_clusters=k0, random_state=self.random_state, n_init=3, batch_size=4096, max_iter=100
        ).fit(reduced)
        if k0 > n_themes:
            labels = (
                AgglomerativeClustering(n_clusters=n_themes, linkage="ward")
                .fit(km.cluster_centers_)
                .labels_[km.labels_]
            )
        else:
            labels = km.labels_.astype(int)
        labels, _ = self._outliers(x, labels)  # the baseline measured outliers in the embedding space
        centroids = np.zeros((int(labels.max()) + 1, x.shape[1]), dtype=np.float32)
        for t in range(len(centroids)):
            c = x[labels == t].mean(axis=0)
            centroids[t] = c / max(float(np.linalg.norm(c)), 1e-12)
        return labels, centroids


MODELS: dict[str, type[ThemeModel]] = {"theme_model": ThemeModel, "baseline_seeded": SeededThemeModel}


def vntc_sample(embedder: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A fixed random sample of VNTC articles (seed 0), first 240 characters, with cached embeddings."""
    with gzip.open(data_dir() / "vntc" / "train.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    idx = np.random.default_rng(0).permutation(len(rows))[:SAMPLE]
    texts = [normalize(rows[i]["text"])[:CHARS] for i in idx]
    labels = np.asarray([rows[i]["label"] for i in idx])
    return texts, labels, cached_embeddings(embedder, texts, embedder.encode)


def faq_questions(embedder: Any) -> tuple[list[str], list[str | None], list[str], np.ndarray]:
    """The public dvc_faq questions (train + dev): text, catalogue field, ministry, cached embeddings."""
    rows: list[dict[str, Any]] = []
    for split in ("train", "dev"):
        with open(data_dir() / "dvc_faq" / f"{split}.jsonl", encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    catalogue = {p.code: p for p in default_catalogue().procedures}
    texts = [normalize(r["text"]) for r in rows]
    fields: list[str | None] = []
    for r in rows:
        proc = catalogue.get(str(r.get("procedure_code")))
        fields.append(r.get("field") or (proc.fields[0] if proc and proc.fields else None))
    return texts, fields, [str(r["agency"]) for r in rows], cached_embeddings(embedder, texts, embedder.encode)


def _ari_pairs(runs: Sequence[np.ndarray]) -> dict[str, Any]:
    pairs = [float(adjusted_rand_score(a, b)) for a, b in combinations(runs, 2)]
    return {"pairs": len(pairs), "ari_mean": round(float(np.mean(pairs)), 4), "ari_min": round(float(np.min(pairs)), 4)}


def seed_stability(emb: np.ndarray, say: Progress, seeds: Sequence[int] = SEEDS) -> dict[str, Any]:
    """ARI across seeds and across 90 % subsamples, for both models, with clustering times."""
    out: dict[str, Any] = {"n": len(emb), "seeds": list(seeds)}
    rng = np.random.default_rng(0)
    subsets = [np.sort(rng.choice(len(emb), int(0.9 * len(emb)), replace=False)) for _ in seeds]
    for name, cls in MODELS.items():
        runs, secs = [], []
        for s in seeds:
            t = time.perf_counter()
            runs.append(cls(random_state=s).cluster(emb)[0])
            secs.append(time.perf_counter() - t)
        sub = []
        for s, idx in zip(seeds, subsets, strict=True):
            full = np.full(len(emb), -2)
            full[idx] = cls(random_state=s).cluster(emb[idx])[0]
            sub.append(full)
        shared = [
            float(adjusted_rand_score(a[(a > -2) & (b > -2)], b[(a > -2) & (b > -2)])) for a, b in combinations(sub, 2)
        ]
        out[name] = {
            "across_seeds": _ari_pairs(runs),
            "across_subsamples_90": {"ari_mean": round(float(np.mean(shared)), 4), "ari_min": round(min(shared), 4)},
            "themes": int(runs[0].max()) + 1,
            "outlier_share": round(float(np.mean(runs[0] == OUTLIER)), 4),
            "cluster_s": [round(x, 2) for x in secs],
        }
        say(
            f"seeds ({len(emb)} texts) {name}: {out[name]['across_seeds']} "
            f"subsamples {out[name]['across_subsamples_90']}"
        )
    return out


def overlapping_periods(texts: list[str], labels: np.ndarray, emb: np.ndarray, say: Progress) -> dict[str, Any]:
    """Weeks 1-12 and 5-16 of a 16-week VNTC stream clustered apart: agreement on the shared weeks, kept ids."""
    rng = np.random.default_rng(7)
    week = rng.integers(0, 16, size=len(texts))
    days = [START + timedelta(days=7 * int(w) + int(rng.integers(7))) for w in week]
    a_idx, b_idx = np.flatnonzero(week < 12), np.flatnonzero(week >= 4)
    shared = np.flatnonzero((week >= 4) & (week < 12))
    out: dict[str, Any] = {
        "periods": "weeks 1-12 and 5-16 of the 6,000 VNTC articles spread at random over 16 weeks",
        "shared_texts": len(shared),
    }
    for name, cls in MODELS.items():
        a = cls(random_state=0, segmenter=str.split, title_mask=str).fit(
            [texts[i] for i in a_idx], timestamps=[days[i] for i in a_idx], embeddings=emb[a_idx]
        )
        b = cls(random_state=0, segmenter=str.split, title_mask=str).fit(
            [texts[i] for i in b_idx],
            timestamps=[days[i] for i in b_idx],
            embeddings=emb[b_idx],
            known=a.known_themes(),
        )
        la = a.labels_[np.searchsorted(a_idx, shared)]
        lb = b.labels_[np.searchsorted(b_idx, shared)]
        row: dict[str, Any] = {"ari_on_shared_weeks": round(float(adjusted_rand_score(la, lb)), 4)}
        keys_a = {t.key: t for t in a.themes_}
        kept = [t for t in b.themes_ if t.key in keys_a]
        jac = []
        for t in kept:
            sa, sb = set(np.flatnonzero(la == keys_a[t.key].id)), set(np.flatnonzero(lb == t.id))
            jac.append(len(sa & sb) / max(len(sa | sb), 1))
        row.update(
            {
                "themes": [len(a.themes_), len(b.themes_)],
                "kept_id": len(kept),
                "kept_id_share": round(len(kept) / max(len(b.themes_), 1), 4),
                "kept_id_members_jaccard_mean": round(float(np.mean(jac)), 4) if jac else None,
                "kept_id_same_label": sum(t.label == keys_a[t.key].label for t in kept),
            }
        )
        out[name] = row
        say(f"overlapping periods {name}: {row}")
    return out


def _bertopic(texts: list[str], emb: np.ndarray) -> tuple[np.ndarray, float, dict[str, Any]]:
    from bertopic import BERTopic
    from umap import UMAP

    t = time.perf_counter()
    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=42)
    model = BERTopic(language="multilingual", umap_model=umap, calculate_probabilities=False, verbose=False)
    topics, _ = model.fit_transform(texts, embeddings=emb)
    secs = time.perf_counter() - t
    labels = np.asarray(topics)
    info = {
        "version": __import__("bertopic").__version__,
        "settings": 'language="multilingual", UMAP 5-d random_state=42, HDBSCAN min_cluster_size 10 (defaults)',
        "examples": [" · ".join(w for w, _ in model.get_topic(k)[:4]) for k in sorted(set(labels) - {-1})[:5]],
    }
    return labels, secs, info


def _partition_scores(
    labels: np.ndarray, gold: Sequence[Any] | np.ndarray, keep: np.ndarray | None = None
) -> dict[str, Any]:
    g = np.asarray([str(x) for x in gold])
    lab = labels if keep is None else labels[keep]
    g = g if keep is None else g[keep]
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(1, int)
    return {
        "clusters": len(set(labels.tolist()) - {OUTLIER}),
        "outlier_share": round(float(np.mean(labels == OUTLIER)), 4),
        "max_share": round(float(sizes.max() / len(labels)), 4),
        "nmi": round(float(normalized_mutual_info_score(g, lab)), 4),
        "ari": round(float(adjusted_rand_score(g, lab)), 4),
    }


def against_topics(texts: list[str], labels: np.ndarray, emb: np.ndarray, say: Progress) -> dict[str, Any]:
    """VNTC: NMI/ARI of each model's themes and BERTopic's topics against the 10 topics (outliers as one group)."""
    out: dict[str, Any] = {"n": len(texts), "gold": "VNTC topic (10)"}
    for name, cls in MODELS.items():
        t = time.perf_counter()
        model = cls(random_state=0, keyword_docs=40).fit(texts, embeddings=emb)
        out[name] = {
            **_partition_scores(model.labels_, labels),
            "seconds_with_keywords": round(time.perf_counter() - t, 2),
            "examples": [t.label for t in model.themes_[:5]],
        }
    try:
        topics, secs, info = _bertopic(texts, emb)
        out["bertopic"] = {**_partition_scores(topics, labels), "seconds": round(secs, 2), **info}
    except ImportError:
        out["bertopic"] = {"skipped": "bertopic not installed (pip install -e .[bench])"}
    say("VNTC topics NMI: " + ", ".join(f"{k} {v.get('nmi')}" for k, v in out.items() if isinstance(v, dict)))
    return out


def public_questions(embedder: Any, say: Progress) -> dict[str, Any]:
    """dvc_faq questions: the largest theme's share; NMI against catalogue field and ministry; beside BERTopic."""
    texts, fields, agencies, emb = faq_questions(embedder)
    keep = np.asarray([f is not None for f in fields])
    out: dict[str, Any] = {
        "n": len(texts),
        "with_field": int(keep.sum()),
        "fields": len({f for f in fields if f}),
        "ministries": len(set(agencies)),
    }
    parts: dict[str, np.ndarray] = {}
    for name, cls in MODELS.items():
        t = time.perf_counter()
        model = cls(random_state=0).fit(texts, embeddings=emb, agencies=agencies)
        secs = time.perf_counter() - t
        parts[name] = model.labels_
        out[name] = {
            "field": _partition_scores(model.labels_, fields, keep),
            "ministry": _partition_scores(model.labels_, agencies),
            "seconds_with_keywords": round(secs, 2),
            "domain_stop_words": sorted(w.replace("_", " ") for w in model.domain_stop_words_)[:40],
            "examples": [
                {"label": t.label, "share": round(t.size / len(texts), 4), "keywords": t.keywords[:5]}
                for t in model.themes_[:8]
            ],
        }
    try:
        topics, secs, info = _bertopic(texts, emb)
        out["bertopic"] = {
            "field": _partition_scores(topics, fields, keep),
            "ministry": _partition_scores(topics, agencies),
            "seconds": round(secs, 2),
            **info,
        }
    except ImportError:
        out["bertopic"] = {"skipped": "bertopic not installed (pip install -e .[bench])"}
    say(
        "dvc_faq: "
        + ", ".join(
            f"{k} max {v['field']['max_share']} NMI {v['field']['nmi']}"
            for k, v in out.items()
            if isinstance(v, dict) and "field" in v
        )
    )
    return out


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
    out: dict[str, Any] = {
        "stream": f"{WEEKS} weeks, {PER_WEEK} articles per topic per week, {len(counts)} topics, x3 in the last 2",
        "runs": runs,
        "quiet_runs": quiet_runs,
    }
    for name, cls in MODELS.items():
        rows = []
        for run in range(runs):
            burst = burstable[run % len(burstable)]
            idx, days = _stream(labels, burst, seed=run)
            model = cls(random_state=run, segmenter=str.split, title_mask=str).fit(
                [texts[i] for i in idx], timestamps=days, embeddings=emb[idx]
            )
            top = model.emerging()[0]
            major = Counter(labels[idx][model.labels_ == top.theme]).most_common(1)[0][0]
            rows.append(
                {
                    "burst": burst,
                    "top_is_burst": bool(major == burst),
                    "top_significant": top.significant,
                    "significant": sum(e.significant for e in model.emerging()),
                    "growth": top.growth,
                    "q": round(top.q_value, 6),
                }
            )
        quiet = []
        for run in range(quiet_runs):
            idx, days = _stream(labels, None, seed=1000 + run)
            model = cls(random_state=run, segmenter=str.split, title_mask=str).fit(
                [texts[i] for i in idx], timestamps=days, embeddings=emb[idx]
            )
            quiet.append(sum(e.significant for e in model.emerging()))
        hits = sum(r["top_is_burst"] and r["top_significant"] for r in rows)
        out[name] = {
            "injected_first_and_significant": hits,
            "injected_first": sum(r["top_is_burst"] for r in rows),
            "by_topic": {
                t: f"{sum(r['top_is_burst'] and r['top_significant'] for r in rows if r['burst'] == t)}/"
                f"{sum(r['burst'] == t for r in rows)}"
                for t in burstable
            },
            "quiet_runs_with_any_significant": sum(q > 0 for q in quiet),
            "quiet_significant_themes_total": int(sum(quiet)),
            "runs_detail": rows,
        }
        say(f"emerging {name}: first+significant {hits}/{runs}, quiet false alarms {sum(quiet)}")
    return out


def clustering_time(emb: np.ndarray, n: int, say: Progress, repeats: int = 3) -> dict[str, Any]:
    """Median clustering time of ``n`` vectors for both models; real vectors resampled with jitter when fewer."""
    out: dict[str, Any] = {"n": n, "real_vectors": min(len(emb), n)}
    if len(emb) < n:
        rng = np.random.default_rng(0)
        pick = rng.integers(0, len(emb), size=n)
        big = emb[pick] + rng.normal(scale=0.02, size=(n, emb.shape[1])).astype(np.float32)
        emb = big / np.linalg.norm(big, axis=1, keepdims=True)
        out["how"] = "real embeddings resampled with replacement + Gaussian jitter (sd 0.02): timing only"
    else:
        emb = emb[:n]
    for name, cls in MODELS.items():
        secs, themes, share = [], 0, 0.0
        for r in range(repeats):
            t = time.perf_counter()
            lab, _ = cls(random_state=r).cluster(emb)
            secs.append(time.perf_counter() - t)
            themes, share = int(lab.max()) + 1, float(np.bincount(lab[lab >= 0]).max() / n)
        out[name] = {
            "cluster_s_median": round(float(np.median(secs)), 2),
            "cluster_s": [round(s, 2) for s in secs],
            "themes": themes,
            "max_share": round(share, 4),
        }
        say(f"clustering {n} texts {name}: {out[name]['cluster_s']} s")
    return out


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


def themes_benchmark(
    embedder: Any, say: Progress, quick: bool = False, scale_n: int = 100_000, stable_n: int = 40_000
) -> dict[str, Any]:
    texts, labels, emb = vntc_sample(embedder)
    say(f"VNTC sample: {len(texts)} articles")
    result: dict[str, Any] = {"embeddings": "default encoder, precomputed and cached; times are clustering only"}
    result["public_questions"] = public_questions(embedder, say)
    result["overlapping_periods"] = overlapping_periods(texts, labels, emb, say)
    result["vntc_topics"] = against_topics(texts, labels, emb, say)
    result["emerging"] = emerging_benchmark(
        texts, labels, emb, say, runs=10 if quick else 30, quiet_runs=3 if quick else 10
    )
    want = 10_000 if quick else max(scale_n, stable_n)
    have = cached_corpus_size(want)
    if have < want:
        say(f"only {have} of {want} corpus embeddings are cached (python -m benchmarks.corpora --n {want})")
    from benchmarks.corpora import real_embeddings

    vecs = real_embeddings(have, verbose=False)[1] if have else emb
    stable = min(have, 10_000 if quick else stable_n) if have else len(emb)
    result["seeds"] = seed_stability(vecs[:stable], say)
    result["seeds"]["texts"] = "benchmarks.corpora real texts, first n" if have else "VNTC sample"
    result["scale"] = clustering_time(vecs, 10_000 if quick else scale_n, say)
    return result
