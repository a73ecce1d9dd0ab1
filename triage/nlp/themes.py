"""Themes: what many submissions of a period are about, which of them grow, and which span agencies.

The analyst's question is "what are citizens writing about, what is new, and which problems are
systemic?" — not the label of one submission. :class:`ThemeModel` answers it from the sentence
embeddings the pipeline already stores:

1. **Reduce**: PCA to ``n_components`` dimensions (linear, fast, deterministic with a seed; UMAP
   would cost minutes on 100,000 texts and brings a numba tool chain).
2. **Over-cluster, then merge**: MiniBatchKMeans with ``over_clusters`` small clusters, whose
   centroids are merged by Ward agglomeration into ``n_themes`` themes. Themes so built may be
   non-spherical (a chain of small clusters), and the result is stable across seeds (ARI is
   reported by :func:`stability` and the benchmark).
3. **Outliers**: a submission far from its theme's centroid (cosine similarity below the theme's
   median minus ``outlier_z`` robust standard deviations), and every member of a theme smaller
   than ``min_theme_size``, gets label -1: off-topic or one-of-a-kind texts do not blur a theme.
4. **Keywords** by class-based TF-IDF (c-TF-IDF, as BERTopic) over Vietnamese *words* segmented by
   underthesea (``thủ_tục``, ``hành_chính``), with a Vietnamese stop-word list
   (``triage/data/vietnamese_stopwords.txt``). Segmentation is slow (~150 articles/s), so it reads
   at most ``keyword_docs`` members per theme, first ``keyword_chars`` characters each.
5. **Representatives**: the members nearest the centroid, with personal data masked.
6. **Over time**: counts per theme per week (Monday-based); :meth:`ThemeModel.emerging` compares
   the last ``window`` weeks against the weeks before with a conditional binomial test (the
   theme's share of all submissions, so a busy week for everyone is not "emerging"), corrects the
   p-values for the number of themes (Benjamini-Hochberg) and asks for a minimum size and growth.
7. **Systemic**: a theme whose submissions belong to at least two agencies, each holding a
   minimum share, is a policy problem beyond one agency — what the PAKN-SKGP regulation asks for.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from itertools import combinations
from typing import Any

import numpy as np

from triage.errors import InvalidInput, NotFitted
from triage.nlp.text import segment

__all__ = [
    "EmergingTheme",
    "Theme",
    "ThemeModel",
    "benjamini_hochberg",
    "emerging_scores",
    "stability",
    "stop_words",
    "week_start",
]

OUTLIER = -1
_HAS_LETTER = re.compile(r"[^\W\d_]")


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """The packaged Vietnamese stop words, lower case, syllables joined by "_"."""
    text = resources.files("triage").joinpath("data/vietnamese_stopwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )


def week_start(moment: date | datetime) -> date:
    """The Monday of the week holding ``moment`` (a datetime is taken in its own timezone)."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Theme:
    """One theme: its members' count, what it is about, examples, and the agencies involved."""

    id: int
    size: int
    keywords: list[str]
    keyword_scores: list[float]
    representatives: list[int]  # indices into the texts given to ``fit``, nearest the centroid first
    agencies: dict[str, int] = field(default_factory=dict)  # agency code -> members
    systemic: bool = False

    @property
    def label(self) -> str:
        """A short name made of the top keywords ("ngập · thoát nước · mưa")."""
        return " · ".join(self.keywords[:3]) or f"chủ đề {self.id + 1}"


@dataclass(frozen=True)
class EmergingTheme:
    """How one theme's recent volume compares with its baseline, and whether that is significant."""

    theme: int
    recent: int  # members in the last ``window`` weeks
    baseline: int  # members in the baseline weeks
    expected: float  # recent members expected if the theme kept its baseline share
    growth: float  # recent share / baseline share (0.5 added to both counts)
    growth_low: float  # one-sided 95 % lower confidence bound of that ratio
    p_value: float
    q_value: float  # Benjamini-Hochberg adjusted over all tested themes
    significant: bool

    @property
    def score(self) -> float:
        """Ranking score: the growth one can be 95 % sure of (rewards size and growth together)."""
        return self.growth_low


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """False-discovery-rate adjusted p-values (q-values), same order as given."""
    # Lazy like emerging_scores: scipy.stats costs start-up time and only the emerging test needs it.
    from scipy.stats import false_discovery_control

    return np.asarray(false_discovery_control(np.asarray(p_values, dtype=float), method="bh"), dtype=float)


def emerging_scores(
    recent: np.ndarray,
    baseline: np.ndarray,
    *,
    recent_total: int,
    baseline_total: int,
    min_size: int = 5,
    min_growth: float = 1.5,
    alpha: float = 0.05,
) -> list[EmergingTheme]:
    """Test every theme's growth; one entry per theme, in theme order.

    Given n = recent + baseline members of a theme, if its share of all submissions did not change
    then ``recent ~ Binomial(n, recent_total / (recent_total + baseline_total))``; the one-sided
    p-value is P(X >= recent). The growth bound comes from the Clopper-Pearson lower bound of the
    binomial proportion, turned back into a ratio of shares.
    """
    from scipy.stats import beta, binom  # deferred: SciPy loads only when emerging themes are tested

    recent = np.asarray(recent, dtype=int)
    baseline = np.asarray(baseline, dtype=int)
    if recent_total <= 0 or baseline_total <= 0:
        raise InvalidInput("the emerging test needs submissions in both the recent and the baseline weeks")
    p0 = recent_total / (recent_total + baseline_total)
    odds0 = p0 / (1 - p0)
    n = recent + baseline
    p_values = np.where(n > 0, binom.sf(recent - 1, np.maximum(n, 1), p0), 1.0)
    q_values = benjamini_hochberg(p_values)
    out = []
    for i in range(len(recent)):
        x, y = int(recent[i]), int(baseline[i])
        growth = ((x + 0.5) / recent_total) / ((y + 0.5) / baseline_total)
        if x > 0:
            p_low = float(beta.ppf(0.05, x, y + 1))
            growth_low = (p_low / (1 - p_low)) / odds0 if p_low < 1 else math.inf
        else:
            growth_low = 0.0
        out.append(
            EmergingTheme(
                theme=i,
                recent=x,
                baseline=y,
                expected=round((x + y) * p0, 3),
                growth=round(growth, 4),
                growth_low=round(growth_low, 4),
                p_value=float(p_values[i]),
                q_value=float(q_values[i]),
                significant=bool(q_values[i] <= alpha and x >= min_size and growth >= min_growth),
            )
        )
    return out


def _default_segmenter(text: str) -> list[str]:
    return segment(text)


class ThemeModel:
    """Cluster a period's embeddings into themes; keywords, examples, weekly counts, emerging score.

    scikit-learn style: ``__init__`` stores keyword-only parameters, ``fit`` learns ``labels_``,
    ``themes_``, ``centroids_``...; the same ``random_state`` gives the same themes.

    Example::

        model = ThemeModel(random_state=0).fit(texts, embeddings=vectors, timestamps=times, agencies=codes)
        for theme in model.themes_:
            print(theme.label, theme.size, theme.systemic)
        top = model.emerging()[0]
    """

    def __init__(
        self,
        *,
        n_themes: int | None = None,
        over_clusters: int | None = None,
        n_components: int = 50,
        outlier_z: float = 2.5,
        min_theme_size: int = 5,
        n_keywords: int = 10,
        n_representatives: int = 3,
        keyword_docs: int = 60,
        keyword_chars: int = 400,
        systemic_min_share: float = 0.15,
        systemic_min_count: int = 2,
        segmenter: Callable[[str], list[str]] | None = None,
        embedder: Any = None,
        random_state: int = 0,
    ) -> None:
        self.n_themes = n_themes
        self.over_clusters = over_clusters
        self.n_components = n_components
        self.outlier_z = outlier_z
        self.min_theme_size = min_theme_size
        self.n_keywords = n_keywords
        self.n_representatives = n_representatives
        self.keyword_docs = keyword_docs
        self.keyword_chars = keyword_chars
        self.systemic_min_share = systemic_min_share
        self.systemic_min_count = systemic_min_count
        self.segmenter = segmenter
        self.embedder = embedder
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def _theme_count(self, n: int) -> int:
        if self.n_themes is not None:
            return max(1, min(self.n_themes, n))
        return int(np.clip(round(math.sqrt(n) / 2.5), 2, 60))

    def cluster(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels (-1 = outlier) and L2-normalised theme centroids for ``embeddings``; no keywords.

        The part that scales with n: the benchmark times it alone on 100,000 texts.
        """
        # Deferred: scikit-learn (~1.5 s) loads only when themes are fitted, not when reports are read.
        from sklearn.cluster import AgglomerativeClustering, MiniBatchKMeans
        from sklearn.decomposition import PCA

        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or len(x) == 0:
            raise InvalidInput(f"embeddings must be a non-empty (n, d) array, got shape {x.shape}")
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
        n = len(x)
        n_themes = self._theme_count(n)
        dims = min(self.n_components, x.shape[1], max(1, n - 1))
        reduced = PCA(n_components=dims, svd_solver="randomized", random_state=self.random_state).fit_transform(x)
        k0 = self.over_clusters or min(max(4 * n_themes, 20), 400)
        k0 = max(n_themes, min(k0, n // 3 if n >= 3 * n_themes else n))
        km = MiniBatchKMeans(
            n_clusters=k0,
            random_state=self.random_state,
            n_init=3,
            batch_size=4096,
            max_iter=100,
        ).fit(reduced)
        small = km.labels_
        if k0 > n_themes:
            merge = AgglomerativeClustering(n_clusters=n_themes, linkage="ward").fit(km.cluster_centers_)
            labels = merge.labels_[small]
        else:
            labels = small.astype(int)
        labels, centroids = self._outliers(x, labels)
        return labels, centroids

    def _outliers(self, x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mark far members and tiny themes as -1; renumber themes by size (largest = 0)."""
        labels = labels.copy()
        for _ in range(2):  # centroids move once outliers leave; a second pass settles them
            ids = [t for t in np.unique(labels) if t != OUTLIER]
            for t in ids:
                members = np.flatnonzero(labels == t)
                if len(members) < self.min_theme_size:
                    labels[members] = OUTLIER
                    continue
                c = x[members].mean(axis=0)
                c /= max(float(np.linalg.norm(c)), 1e-12)
                sims = x[members] @ c
                med = float(np.median(sims))
                mad = float(np.median(np.abs(sims - med))) * 1.4826
                far = sims < med - self.outlier_z * max(mad, 1e-6)
                labels[members[far]] = OUTLIER
        kept = [t for t in np.unique(labels) if t != OUTLIER and np.sum(labels == t) >= self.min_theme_size]
        kept.sort(key=lambda t: (-int(np.sum(labels == t)), int(np.flatnonzero(labels == t)[0])))
        remap = {old: new for new, old in enumerate(kept)}
        out = np.array([remap.get(int(t), OUTLIER) for t in labels], dtype=int)
        centroids = np.zeros((len(kept), x.shape[1]), dtype=np.float32)
        for new in range(len(kept)):
            c = x[out == new].mean(axis=0)
            centroids[new] = c / max(float(np.linalg.norm(c)), 1e-12)
        return out, centroids

    def fit(
        self,
        texts: Sequence[str],
        timestamps: Sequence[date | datetime] | None = None,
        embeddings: np.ndarray | None = None,
        agencies: Sequence[str | None] | None = None,
    ) -> ThemeModel:
        """Find the themes of ``texts`` (already normalised); embeddings are encoded when not given."""
        n = len(texts)
        if n == 0:
            raise InvalidInput("no texts to find themes in")
        for name, seq in (("timestamps", timestamps), ("agencies", agencies)):
            if seq is not None and len(seq) != n:
                raise InvalidInput(f"{name} has {len(seq)} items for {n} texts")
        if embeddings is None:
            if self.embedder is None:
                raise InvalidInput("give embeddings, or an embedder to compute them")
            embeddings = np.asarray(self.embedder.encode(list(texts)), dtype=np.float32)
        if len(embeddings) != n:
            raise InvalidInput(f"embeddings has {len(embeddings)} rows for {n} texts")
        x = np.asarray(embeddings, dtype=np.float32)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        self.labels_, self.centroids_ = self.cluster(x)
        self.n_texts_ = n
        self.weeks_of_ = None if timestamps is None else [week_start(t) for t in timestamps]
        keywords = self._keywords(texts, self.labels_)
        themes = []
        for t in range(len(self.centroids_)):
            members = np.flatnonzero(self.labels_ == t)
            sims = x[members] @ self.centroids_[t]
            reps = [int(i) for i in members[np.argsort(-sims)[: self.n_representatives]]]
            counts: dict[str, int] = {}
            if agencies is not None:
                counts = dict(Counter(str(agencies[int(i)]) for i in members if agencies[int(i)]).most_common())
            words, scores = keywords[t]
            themes.append(
                Theme(
                    id=t,
                    size=len(members),
                    keywords=words,
                    keyword_scores=scores,
                    representatives=reps,
                    agencies=counts,
                    systemic=self._systemic(counts, len(members)),
                )
            )
        self.themes_ = themes
        return self

    def _systemic(self, agency_counts: dict[str, int], size: int) -> bool:
        strong = [
            c for c in agency_counts.values() if c >= self.systemic_min_count and c >= self.systemic_min_share * size
        ]
        return len(strong) >= 2

    def _keywords(self, texts: Sequence[str], labels: np.ndarray) -> list[tuple[list[str], list[float]]]:
        """c-TF-IDF over segmented words: tf of a word in the theme x log(1 + mean words per theme / its frequency)."""
        n_themes = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
        if n_themes == 0:
            return []
        segment = self.segmenter or _default_segmenter
        stops = stop_words()
        rng = np.random.default_rng(self.random_state)
        per_theme: list[Counter[str]] = []
        for t in range(n_themes):
            members = np.flatnonzero(labels == t)
            if len(members) > self.keyword_docs:
                members = np.sort(rng.choice(members, size=self.keyword_docs, replace=False))
            bag: Counter[str] = Counter()
            for i in members:
                for token in segment(texts[int(i)][: self.keyword_chars]):
                    word = token.lower().replace(" ", "_")
                    if len(word) < 2 or word in stops or not _HAS_LETTER.search(word) or "[" in word:
                        continue
                    bag[word] += 1
            per_theme.append(bag)
        vocab = sorted(set().union(*per_theme))
        if not vocab:
            return [([], []) for _ in range(n_themes)]
        index = {w: j for j, w in enumerate(vocab)}
        tf = np.zeros((n_themes, len(vocab)))
        for t, bag in enumerate(per_theme):
            for w, c in bag.items():
                tf[t, index[w]] = c
        totals = tf.sum(axis=1, keepdims=True)
        avg_words = float(totals.mean())
        idf = np.log(1.0 + avg_words / np.maximum(tf.sum(axis=0), 1.0))
        scores = (tf / np.maximum(totals, 1.0)) * idf
        out = []
        for t in range(n_themes):
            top = [j for j in np.argsort(-scores[t]) if tf[t, j] > 0][: self.n_keywords]
            out.append(([vocab[j].replace("_", " ") for j in top], [round(float(scores[t, j]), 5) for j in top]))
        return out

    # ------------------------------------------------------------------ after fitting

    def _check(self) -> None:
        if not hasattr(self, "themes_"):
            raise NotFitted("ThemeModel is not fitted yet: call fit(texts, timestamps, embeddings) first")

    def themes_over_time(self, *, until: date | None = None, weeks: int | None = None) -> tuple[list[date], np.ndarray]:
        """Monday of each week and the members per theme per week: an array (n_themes, n_weeks).

        Weeks run from the first week with a submission (or ``weeks`` before ``until``) to the
        week of ``until`` (default: the last submission's week); empty weeks count zero.
        A query: it changes nothing on the model.
        """
        axis, counts, _ = self._weekly(until, weeks)
        return axis, counts

    def _weekly(self, until: date | None, weeks: int | None) -> tuple[list[date], np.ndarray, np.ndarray]:
        """Week axis, members per theme per week, and all submissions per week (outliers included)."""
        self._check()
        if self.weeks_of_ is None:
            raise InvalidInput("fit was given no timestamps: no counts over time")
        last = week_start(until) if until else max(self.weeks_of_)
        first = last - timedelta(weeks=weeks - 1) if weeks else min(self.weeks_of_)
        n_weeks = (last - first).days // 7 + 1
        if n_weeks <= 0:
            raise InvalidInput("the period ends before its first submission")
        axis = [first + timedelta(weeks=i) for i in range(n_weeks)]
        counts = np.zeros((len(self.themes_), n_weeks), dtype=int)
        totals = np.zeros(n_weeks, dtype=int)
        for label, wk in zip(self.labels_, self.weeks_of_, strict=True):
            col = (wk - first).days // 7
            if 0 <= col < n_weeks:
                totals[col] += 1
                if label != OUTLIER:
                    counts[label, col] += 1
        return axis, counts, totals

    def emerging(
        self,
        *,
        window: int = 2,
        baseline: int | None = None,
        until: date | None = None,
        min_size: int = 5,
        min_growth: float = 1.5,
        alpha: float = 0.05,
    ) -> list[EmergingTheme]:
        """Themes ranked by growth of the last ``window`` weeks against the ``baseline`` weeks before.

        All themes are returned, best score first; ``significant`` marks those that pass the
        bar (BH-adjusted p <= ``alpha``, at least ``min_size`` recent members, growth >= ``min_growth``).
        ``baseline=None`` uses every earlier week of the data.
        """
        if window < 1:
            raise InvalidInput("window must be at least one week")
        axis, counts, totals = self._weekly(until, None)
        n_weeks = len(axis)
        if n_weeks <= window:
            raise InvalidInput(f"the data spans {n_weeks} week(s): need more than the {window}-week window")
        start = 0 if baseline is None else max(0, n_weeks - window - baseline)
        recent = counts[:, n_weeks - window :].sum(axis=1)
        base = counts[:, start : n_weeks - window].sum(axis=1)
        result = emerging_scores(
            recent,
            base,
            recent_total=int(totals[n_weeks - window :].sum()),
            baseline_total=int(totals[start : n_weeks - window].sum()),
            min_size=min_size,
            min_growth=min_growth,
            alpha=alpha,
        )
        return sorted(result, key=lambda e: (not e.significant, -e.score, e.p_value, e.theme))

    @property
    def outlier_share_(self) -> float:
        self._check()
        return float(np.mean(self.labels_ == OUTLIER))


def stability(embeddings: np.ndarray, seeds: Sequence[int] = (0, 1, 2), **params: Any) -> dict[str, Any]:
    """How much the themes depend on the seed: adjusted Rand index between every pair of seeds, and the time per seed.

    Outliers count as one more group; 1.0 = identical partitions, 0 = chance agreement.
    """
    from sklearn.metrics import adjusted_rand_score  # deferred: see ThemeModel.fit

    runs, seconds = [], []
    for s in seeds:
        t = time.perf_counter()
        runs.append(ThemeModel(random_state=s, **params).cluster(embeddings)[0])
        seconds.append(time.perf_counter() - t)
    pairs = [float(adjusted_rand_score(a, b)) for a, b in combinations(runs, 2)]
    return {
        "seeds": list(seeds),
        "ari_pairs": [round(p, 4) for p in pairs],
        "ari_mean": round(float(np.mean(pairs)), 4) if pairs else None,
        "ari_min": round(float(np.min(pairs)), 4) if pairs else None,
        "themes": [int(r.max()) + 1 for r in runs],
        "outlier_share": [round(float(np.mean(r == OUTLIER)), 4) for r in runs],
        "seconds": [round(x, 2) for x in seconds],  # clustering time per seed (the scale benchmark's figure)
    }
