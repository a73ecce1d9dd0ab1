"""Themes: what many submissions of a period are about, which of them grow, and which span agencies.

The analyst's question is "what are citizens writing about, what is new, and which problems are
systemic?" — not the label of one submission. :class:`ThemeModel` answers it from the sentence
embeddings the pipeline already stores:

1. **Reduce**: centre the unit embeddings (what every text shares goes), PCA to ``n_components``
   by an eigen-decomposition (no randomness), back to unit length; then each vector becomes the
   mean of its ``neighbours`` nearest (:func:`smooth`), which brings out local structure (what
   UMAP gives BERTopic) at linear cost.
2. **Cluster, deterministically**: k-means (Lloyd) from centres found by principal-direction
   bisection (:func:`bisecting_init`), for ``round(1.2 * sqrt(n))`` clusters (at most 100); then
   clusters closer than ``merge_similarity`` are merged, so the number of themes follows the
   data (a broad news topic is one theme, each administrative procedure family its own), and a
   theme over ``max_theme_share`` of the texts (a catch-all; off by default, the merged themes of
   real questions stay under 10 %) is split. No seed is used: the same
   texts give the same themes (ARI 1.0 across seeds), and :meth:`ThemeModel.fit` can start from
   an earlier period's themes (``known``) so that a theme that goes on is found where it was.
3. **Outliers**: a submission far from its theme's centroid (cosine similarity below the theme's
   median minus ``outlier_z`` robust standard deviations), and every member of a theme smaller
   than ``min_theme_size``, gets label -1: off-topic or one-of-a-kind texts do not blur a theme.
4. **Keywords** by class-based TF-IDF (c-TF-IDF, as BERTopic) over Vietnamese *words* segmented by
   underthesea (``thủ_tục``, ``hành_chính``), without the packaged stop words
   (``triage/data/vietnamese_stopwords.txt``) nor the **domain stop words** learnt from the texts
   (:func:`domain_stop_words`: words spread evenly over the agencies, or the themes, such as
   "thủ tục", "thực hiện", "hồ sơ" in administrative questions). Segmentation is slow (~150
   articles/s), so it reads the ``keyword_docs`` most central members per theme, first
   ``keyword_chars`` characters each.
5. **Labels and representatives**: a theme's label is its two top keywords and the opening of
   its most central submission ("giấy phép lái xe · cấp đổi — Thủ tục cấp đổi Giấy phép lái xe…");
   representatives are the members nearest the centroid. Personal data masked in both.
6. **Identity**: a theme matched to an earlier period's (:func:`match_themes`: one-to-one, cosine
   of centred centroids at least ``match_threshold``) keeps its ``key`` and label.
7. **Over time**: counts per theme per week (Monday-based); :meth:`ThemeModel.emerging` compares
   the last ``window`` weeks against the weeks before with a conditional binomial test (the
   theme's share of all submissions, so a busy week for everyone is not "emerging"), corrects the
   p-values for the number of themes (Benjamini-Hochberg) and asks for a minimum size and growth.
8. **Systemic**: a theme whose submissions belong to at least two agencies, each holding a
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
from triage.nlp.text import mask_personal, segment

__all__ = [
    "EmergingTheme",
    "KnownTheme",
    "Theme",
    "ThemeModel",
    "benjamini_hochberg",
    "bisect",
    "bisecting_init",
    "domain_stop_words",
    "emerging_scores",
    "headline",
    "match_themes",
    "principal_axes",
    "project",
    "reduce",
    "smooth",
    "stability",
    "stop_words",
    "theme_label",
    "week_start",
]

OUTLIER = -1
_HAS_LETTER = re.compile(r"[^\W\d_]")


# The commonest Vietnamese family names (about nine in ten people carry one of them).
SURNAMES = frozenset(
    "nguyễn trần lê phạm hoàng huỳnh phan vũ võ đặng bùi đỗ hồ ngô dương lý đinh trương lưu đoàn "
    "mai cao lâm tô trịnh quách hà thái tạ châu văn".split()
)


def looks_like_person(token: str) -> bool:
    """A segmented token that reads as a person's name: 2-4 capitalised syllables, the first a family name
    ("Nguyễn Văn Hùng"); such words stay out of theme keywords, which analysts see unmasked."""
    syllables = token.replace("_", " ").split()
    if not (2 <= len(syllables) <= 4 and all(syl[:1].isupper() for syl in syllables)):
        return False
    if syllables[0].lower() not in SURNAMES:
        return False
    from triage.nlp.agencies import default_registry  # "Hà Nội", "Hồ Chí Minh", "Cao Bằng" are places

    return not default_registry().find_provinces(" ".join(syllables))


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


HEADLINE_CHARS = 70
_CLAUSE_END = re.compile(r"[.?!;:\n]")


def headline(text: str, limit: int = HEADLINE_CHARS) -> str:
    """The opening of a text as a title: its first clause, cut at a word under ``limit`` characters."""
    head = _CLAUSE_END.split(text.strip(), maxsplit=1)[0].strip(" ,-–") or text.strip()
    if len(head) <= limit:
        return head
    cut = head[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,-–")
    return f"{cut or head[: limit - 1]}…"


def theme_label(keywords: Sequence[str], title: str, number: int) -> str:
    """A theme's name: its two top keywords and its most central submission's opening.

    ``theme_label(["giấy phép lái xe", "cấp đổi"], "Thủ tục cấp đổi Giấy phép lái xe bị hỏng", 0)``
    -> ``"giấy phép lái xe · cấp đổi — Thủ tục cấp đổi Giấy phép lái xe bị hỏng"``.
    """
    words = " · ".join(keywords[:2])
    if words and title:
        return f"{words} — {title}"
    return words or title or f"chủ đề {number + 1}"


@dataclass(frozen=True)
class Theme:
    """One theme: its members' count, what it is about, examples, and the agencies involved.

    ``id`` is the theme's index in this fit (0 = largest); ``key`` its id across periods, the same
    as an earlier period's theme it was matched to (see :func:`match_themes`), and ``name`` that
    theme's label, carried over so a theme keeps its name from week to week.
    """

    id: int
    size: int
    keywords: list[str]
    keyword_scores: list[float]
    representatives: list[int]  # indices into the texts given to ``fit``, nearest the centroid first
    agencies: dict[str, int] = field(default_factory=dict)  # agency code -> members
    systemic: bool = False
    title: str = ""  # opening of the most central submission (personal data masked)
    key: int = -1  # id across periods (-1: none assigned)
    name: str = ""  # label carried over from the matched earlier theme

    @property
    def label(self) -> str:
        """A short Vietnamese name: "giấy phép lái xe · cấp đổi — Thủ tục cấp đổi Giấy phép lái xe…"."""
        return self.name or theme_label(self.keywords, self.title, self.id)


@dataclass(frozen=True)
class KnownTheme:
    """A theme of an earlier period, as kept between reports: its id, label and centroid (unit vector)."""

    key: int
    label: str
    centroid: np.ndarray


def match_themes(
    centroids: np.ndarray, known: np.ndarray, *, mean: np.ndarray | None = None, threshold: float = 0.8
) -> list[int | None]:
    """For each theme centroid, the row of ``known`` it continues, or None (a new theme).

    One-to-one (Hungarian assignment on cosine similarity), kept only at ``threshold`` or above.
    Cosines are taken after subtracting ``mean`` (the period's mean embedding): sentence
    embeddings of one domain are all alike (raw cosines 0.8-0.95), their differences are not.
    """
    from scipy.optimize import linear_sum_assignment  # deferred with the rest of SciPy

    if len(centroids) == 0 or len(known) == 0:
        return [None] * len(centroids)
    shift = np.zeros(centroids.shape[1], dtype=np.float64) if mean is None else np.asarray(mean, dtype=np.float64)
    a = np.asarray(centroids, dtype=np.float64) - shift
    b = np.asarray(known, dtype=np.float64) - shift
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    sims = a @ b.T
    rows, cols = linear_sum_assignment(-sims)
    out: list[int | None] = [None] * len(centroids)
    for r, c in zip(rows, cols, strict=True):
        if sims[r, c] >= threshold:
            out[int(r)] = int(c)
    return out


def domain_stop_words(
    docs: Sequence[Sequence[str]],
    groups: Sequence[Any],
    *,
    min_entropy: float = 0.8,
    min_group_share: float = 0.5,
    min_docs: int = 3,
) -> frozenset[str]:
    """Words spread evenly over the groups (agencies, fields or themes): they name no theme.

    For each word, its document rate in each group (documents of the group holding it / documents
    of the group) is normalised into a distribution over groups; a word found in at least
    ``min_group_share`` of the groups and ``min_docs`` documents whose distribution's entropy is at
    least ``min_entropy`` of the maximum (log of the number of groups) is a domain stop word:
    "thủ tục", "thực hiện", "quy định" in administrative questions, "cho biết" everywhere. Needs
    three groups or more (an empty set otherwise).
    """
    names = sorted({g for g in groups}, key=str)
    if len(names) < 3:
        return frozenset()
    col = {g: j for j, g in enumerate(names)}
    sizes = np.zeros(len(names))
    df: dict[str, np.ndarray] = {}
    for words, g in zip(docs, groups, strict=True):
        j = col[g]
        sizes[j] += 1
        for w in set(words):
            row = df.get(w)
            if row is None:
                row = df[w] = np.zeros(len(names))
            row[j] += 1
    out = set()
    log_g = math.log(len(names))
    for w, row in df.items():
        if row.sum() < min_docs or np.count_nonzero(row) < min_group_share * len(names):
            continue
        rates = row / np.maximum(sizes, 1)
        p = rates / rates.sum()
        p = p[p > 0]
        if float(-(p * np.log(p)).sum()) >= min_entropy * log_g:
            out.add(w)
    return frozenset(out)


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


def reduce(x: np.ndarray, n_components: int, *, max_fit: int = 20_000) -> np.ndarray:
    """Unit vectors in the ``n_components`` principal directions of the centred embeddings.

    Centring removes what every text shares (sentence embeddings of one domain all lean one way:
    "an administrative question"), so what is left tells themes apart. PCA by an eigen-decomposition
    of the covariance of at most ``max_fit`` rows taken at a fixed stride, signs fixed: no
    randomness, the same data give the same axes.
    """
    mean, w = principal_axes(x, n_components, max_fit=max_fit)
    return project(x, mean, w)


def principal_axes(x: np.ndarray, n_components: int, *, max_fit: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``x`` and its top principal directions (columns), deterministically (see :func:`reduce`)."""
    x = np.asarray(x, dtype=np.float32)
    mean = x.mean(axis=0)
    dims = max(1, min(n_components, x.shape[1], len(x) - 1))
    fit = x[:: max(1, len(x) // max_fit)] - mean
    values, vectors = np.linalg.eigh((fit.T @ fit).astype(np.float64) / max(len(fit), 1))
    order = np.argsort(-values, kind="stable")
    w = vectors[:, order[:dims]]
    w *= np.where(w[np.argmax(np.abs(w), axis=0), np.arange(dims)] < 0, -1.0, 1.0)
    return mean, w.astype(np.float32)


def project(x: np.ndarray, mean: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rows of ``x`` centred, projected on ``w`` and scaled to unit length."""
    z = (np.asarray(x, dtype=np.float32) - mean) @ w
    return np.asarray(z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12), dtype=np.float32)


def bisecting_init(z: np.ndarray, k: int, groups: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """``k`` starting centroids by principal-direction bisection: no seed, so no run-to-run drift.

    Repeatedly the group with the largest sum of squared distances to its mean is cut in two at
    its mean, across its first principal direction (Su & Dy's "PCA-Part" initialisation). Starts
    from ``groups`` (index arrays) when given, else from all rows as one group.
    """
    parts = bisect(z, k, groups)
    return np.stack([z[g].mean(axis=0) for g in parts]).astype(np.float32)


def bisect(z: np.ndarray, k: int, groups: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
    """The rows of ``z`` cut into (at most) ``k`` groups by principal-direction bisection (:func:`bisecting_init`)."""
    parts = [np.arange(len(z))] if groups is None else [np.asarray(g) for g in groups if len(g)]
    spread = [_sse(z[g]) for g in parts]
    while len(parts) < k:
        i = int(np.argmax(spread))
        if spread[i] <= 0:
            break
        members = parts[i]
        sub = z[members] - z[members].mean(axis=0)
        _, vectors = np.linalg.eigh((sub.T @ sub).astype(np.float64))
        proj = sub @ vectors[:, -1].astype(np.float32)
        left, right = members[proj <= 0], members[proj > 0]
        if len(left) == 0 or len(right) == 0:
            spread[i] = -1.0
            continue
        parts[i : i + 1] = [left, right]
        spread[i : i + 1] = [_sse(z[left]), _sse(z[right])]
    return parts


def smooth(z: np.ndarray, neighbours: int, *, block: int = 2_000) -> np.ndarray:
    """Each unit vector replaced by the mean of its ``neighbours`` nearest (itself included), re-normalised.

    Pulls near-paraphrases together and lifts the local structure k-means alone misses (what
    UMAP gives BERTopic, at a fraction of the cost). Neighbours are exact within groups of at
    most ``block`` rows cut by :func:`bisect` (all rows at once below that): no seed, linear in n.
    """
    if neighbours <= 1 or len(z) <= neighbours:
        return z
    out = np.empty_like(z)
    for members in bisect(z, math.ceil(len(z) / block)):
        sub = z[members]
        m = min(neighbours, len(members))
        for start in range(0, len(members), 1024):
            sims = sub[start : start + 1024] @ sub.T
            near = np.argpartition(-sims, m - 1, axis=1)[:, :m]
            out[members[start : start + 1024]] = sub[near].mean(axis=1)
    return np.asarray(out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12), dtype=np.float32)


def _sse(z: np.ndarray) -> float:
    return float(((z - z.mean(axis=0)) ** 2).sum()) if len(z) > 1 else 0.0


def _centers(z: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, z.shape[1]), dtype=np.float32)
    for t in range(k):
        members = labels == t
        if members.any():
            out[t] = z[members].mean(axis=0)
    return out


def _merge_close(z: np.ndarray, labels: np.ndarray, similarity: float | None) -> np.ndarray:
    """Merge clusters whose centroids are closer than ``similarity`` (cosine, average linkage).

    k-means cuts a broad subject into several clusters as readily as it separates distinct
    matters; merging the close ones lets the number of themes follow the data's structure (ten
    news topics: about twenty themes; 750 administrative procedures: about forty) instead of the
    volume alone.
    """
    # k-means leaves a cluster empty when there are fewer distinct texts than clusters (copies of one
    # text): renumber the clusters that have members, or the empty one's zero centroid breaks cosine.
    present, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(-1)
    k = len(present)
    if similarity is None or k < 3:
        return labels
    from sklearn.cluster import AgglomerativeClustering  # deferred with the rest of scikit-learn

    centers = _centers(z, labels, k)
    centers /= np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    merge = AgglomerativeClustering(
        n_clusters=None, distance_threshold=1.0 - similarity, metric="cosine", linkage="average"
    ).fit(centers)
    return np.asarray(merge.labels_, dtype=int)[labels]


def _kmeans(z: np.ndarray, centers: np.ndarray, max_iter: int = 50) -> np.ndarray:
    """Lloyd's k-means from the given centres (deterministic: no random restarts)."""
    # Deferred: scikit-learn (~1.5 s) loads only when themes are fitted, not when reports are read.
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=len(centers), init=centers, n_init=1, max_iter=max_iter, algorithm="lloyd")
    return np.asarray(km.fit(z).labels_, dtype=int)


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
        n_components: int = 100,
        neighbours: int = 10,
        outlier_z: float = 2.5,
        min_theme_size: int = 5,
        n_keywords: int = 10,
        n_representatives: int = 3,
        keyword_docs: int = 60,
        keyword_chars: int = 400,
        max_theme_share: float | None = None,
        merge_similarity: float | None = 0.5,
        match_threshold: float = 0.8,
        title_mask: Callable[[str], str] | None = None,
        systemic_min_share: float = 0.15,
        systemic_min_count: int = 2,
        segmenter: Callable[[str], list[str]] | None = None,
        embedder: Any = None,
        random_state: int = 0,
    ) -> None:
        self.n_themes = n_themes
        self.over_clusters = over_clusters
        self.n_components = n_components
        self.neighbours = neighbours
        self.outlier_z = outlier_z
        self.min_theme_size = min_theme_size
        self.n_keywords = n_keywords
        self.n_representatives = n_representatives
        self.keyword_docs = keyword_docs
        self.keyword_chars = keyword_chars
        self.max_theme_share = max_theme_share
        self.merge_similarity = merge_similarity
        self.match_threshold = match_threshold
        self.title_mask = title_mask
        self.systemic_min_share = systemic_min_share
        self.systemic_min_count = systemic_min_count
        self.segmenter = segmenter
        self.embedder = embedder
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def _theme_count(self, n: int) -> int:
        if self.n_themes is not None:
            return max(1, min(self.n_themes, n))
        return int(np.clip(round(math.sqrt(n) * 1.2), 2, 100))

    def cluster(self, embeddings: np.ndarray, init: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Labels (-1 = outlier) and L2-normalised theme centroids for ``embeddings``; no keywords.

        The part that scales with n: the benchmark times it alone on 100,000 texts. Deterministic:
        the same embeddings give the same themes whatever ``random_state`` (see :func:`reduce`,
        :func:`bisecting_init`). ``init``: centroids of an earlier period's themes (embedding
        space); those that still hold ``min_theme_size`` texts start the clustering, bisection
        adds the rest, so a theme that goes on is found again where it was.
        """
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or len(x) == 0:
            raise InvalidInput(f"embeddings must be a non-empty (n, d) array, got shape {x.shape}")
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        n = len(x)
        n_themes = self._theme_count(n)
        mean, w = principal_axes(x, self.n_components)
        raw = project(x, mean, w)
        z = smooth(raw, self.neighbours)
        if n_themes <= 1 or n < 2:
            labels = np.zeros(n, dtype=int)
        else:
            labels = _kmeans(z, self._start(z, n_themes, None if init is None else project(init, mean, w)))
            if self.n_themes is None:  # a count asked for is kept
                labels = self._split_catch_alls(z, _merge_close(z, labels, self.merge_similarity))
        labels, _ = self._outliers(raw, labels)
        centroids = np.zeros((int(labels.max()) + 1 if labels.max() >= 0 else 0, x.shape[1]), dtype=np.float32)
        for t in range(len(centroids)):
            c = x[labels == t].mean(axis=0)
            centroids[t] = c / max(float(np.linalg.norm(c)), 1e-12)
        return labels, centroids

    def _start(self, z: np.ndarray, k: int, known: np.ndarray | None) -> np.ndarray:
        """Starting centres: the known ones still holding ``min_theme_size`` texts (largest first, at most k).

        Bisection of their groups adds the rest.
        """
        if known is None or len(known) == 0:
            return bisecting_init(z, k)
        nearest = np.argmax(z @ known.T, axis=1)
        sizes = np.bincount(nearest, minlength=len(known))
        alive = [int(j) for j in np.argsort(-sizes, kind="stable") if sizes[j] >= self.min_theme_size][:k]
        if not alive:
            return bisecting_init(z, k)
        nearest = np.asarray(alive)[np.argmax(z @ known[alive].T, axis=1)]
        return bisecting_init(z, k, [np.flatnonzero(nearest == j) for j in alive])

    def _split_catch_alls(self, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Split any theme holding more than ``max_theme_share`` of the texts (a catch-all) in two, then re-settle.

        Only when the number of themes follows the volume (``n_themes=None``).
        """
        if self.max_theme_share is None:
            return labels
        n = len(z)
        for _ in range(20):
            sizes = np.bincount(labels)
            big = int(np.argmax(sizes))
            if sizes[big] <= self.max_theme_share * n or sizes[big] < 2 * self.min_theme_size:
                break
            members = np.flatnonzero(labels == big)
            halves = bisecting_init(z[members], 2)
            centers = np.concatenate([np.delete(_centers(z, labels, len(sizes)), big, axis=0), halves])
            labels = _kmeans(z, centers)
        return labels

    def _outliers(self, z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mark far members and tiny themes as -1; renumber themes by size (largest = 0).

        ``z`` are the reduced, unit-length vectors the themes were found in: there the common
        direction of all texts is gone, so a member's similarity to its centroid discriminates.
        """
        labels = labels.copy()
        for _ in range(2):  # centroids move once outliers leave; a second pass settles them
            ids = [t for t in np.unique(labels) if t != OUTLIER]
            for t in ids:
                members = np.flatnonzero(labels == t)
                if len(members) < self.min_theme_size:
                    labels[members] = OUTLIER
                    continue
                c = z[members].mean(axis=0)
                c /= max(float(np.linalg.norm(c)), 1e-12)
                sims = z[members] @ c
                med = float(np.median(sims))
                mad = float(np.median(np.abs(sims - med))) * 1.4826
                far = sims < med - self.outlier_z * max(mad, 1e-6)
                labels[members[far]] = OUTLIER
        kept = [t for t in np.unique(labels) if t != OUTLIER and np.sum(labels == t) >= self.min_theme_size]
        kept.sort(key=lambda t: (-int(np.sum(labels == t)), int(np.flatnonzero(labels == t)[0])))
        remap = {old: new for new, old in enumerate(kept)}
        out = np.array([remap.get(int(t), OUTLIER) for t in labels], dtype=int)
        return out, _centers(z, out, len(kept))

    def fit(
        self,
        texts: Sequence[str],
        timestamps: Sequence[date | datetime] | None = None,
        embeddings: np.ndarray | None = None,
        agencies: Sequence[str | None] | None = None,
        known: Sequence[KnownTheme] | None = None,
    ) -> ThemeModel:
        """Find the themes of ``texts`` (already normalised); embeddings are encoded when not given.

        ``known``: themes of earlier periods; a theme matching one (:func:`match_themes`) takes its
        ``key`` and label, the others get new keys above every known one.
        """
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
        self.labels_, self.centroids_ = self.cluster(x, init=np.stack([k.centroid for k in known]) if known else None)
        self.mean_ = x.mean(axis=0)
        self.n_texts_ = n
        self.weeks_of_ = None if timestamps is None else [week_start(t) for t in timestamps]
        central: list[np.ndarray] = []
        for t in range(len(self.centroids_)):
            members = np.flatnonzero(self.labels_ == t)
            sims = x[members] @ self.centroids_[t]
            central.append(members[np.argsort(-sims, kind="stable")])
        keywords = self._keywords(texts, central, agencies)
        matched = match_themes(
            self.centroids_,
            np.stack([k.centroid for k in known]) if known else np.zeros((0, x.shape[1]), np.float32),
            mean=self.mean_,
            threshold=self.match_threshold,
        )
        next_key = max((k.key for k in known or ()), default=-1) + 1
        mask = self.title_mask or mask_personal
        themes = []
        for t in range(len(self.centroids_)):
            members = central[t]
            reps = [int(i) for i in members[: self.n_representatives]]
            counts: dict[str, int] = {}
            if agencies is not None:
                counts = dict(Counter(str(agencies[int(i)]) for i in members if agencies[int(i)]).most_common())
            words, scores = keywords[t]
            row = matched[t]
            if row is None:
                key, name = next_key, ""
                next_key += 1
            else:
                key, name = known[row].key, known[row].label  # type: ignore[index]
            themes.append(
                Theme(
                    id=t,
                    size=len(members),
                    keywords=words,
                    keyword_scores=scores,
                    representatives=reps,
                    agencies=counts,
                    systemic=self._systemic(counts, len(members)),
                    title=headline(mask(texts[reps[0]])) if reps else "",
                    key=key,
                    name=name,
                )
            )
        self.themes_ = themes
        return self

    def known_themes(self) -> list[KnownTheme]:
        """This fit's themes as the next period's ``known``: key, label and centroid."""
        self._check()
        return [KnownTheme(key=t.key, label=t.label, centroid=self.centroids_[t.id].copy()) for t in self.themes_]

    def _systemic(self, agency_counts: dict[str, int], size: int) -> bool:
        strong = [
            c for c in agency_counts.values() if c >= self.systemic_min_count and c >= self.systemic_min_share * size
        ]
        return len(strong) >= 2

    def _keywords(
        self, texts: Sequence[str], central: Sequence[np.ndarray], agencies: Sequence[str | None] | None
    ) -> list[tuple[list[str], list[float]]]:
        """c-TF-IDF over segmented words of each theme's ``keyword_docs`` most central members.

        Score: tf of a word in the theme x log(1 + mean words per theme / its frequency). Left out:
        the packaged stop words and the domain stop words learnt here (:func:`domain_stop_words`
        over the agencies when at least three hold the texts read, else over the themes), kept in
        ``domain_stop_words_``.
        """
        n_themes = len(central)
        self.domain_stop_words_: frozenset[str] = frozenset()
        if n_themes == 0:
            return []
        segment = self.segmenter or _default_segmenter
        stops = stop_words()
        docs: list[list[str]] = []
        owner: list[int] = []
        for t, members in enumerate(central):
            for i in members[: self.keyword_docs]:
                words = []
                for token in segment(texts[int(i)][: self.keyword_chars]):
                    word = token.lower().replace(" ", "_")
                    if len(word) < 2 or word in stops or not _HAS_LETTER.search(word) or "[" in word:
                        continue
                    if looks_like_person(token):  # a keyword is shown to analysts: never a person's name
                        continue
                    words.append(word)
                docs.append(words)
                owner.append(t)
        read = [int(i) for members in central for i in members[: self.keyword_docs]]
        by_agency = [agencies[i] for i in read] if agencies is not None else []
        if by_agency and all(by_agency) and len(set(by_agency)) >= 3:
            domain = domain_stop_words(docs, by_agency)
        else:
            domain = domain_stop_words(docs, owner)
        self.domain_stop_words_ = domain
        per_theme: list[Counter[str]] = [Counter() for _ in range(n_themes)]
        for words, t in zip(docs, owner, strict=True):
            per_theme[t].update(w for w in words if w not in domain)
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
            top = [j for j in np.argsort(-scores[t], kind="stable") if tf[t, j] > 0][: self.n_keywords]
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
