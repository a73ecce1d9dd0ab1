"""Router: a label-agnostic, calibrated text classifier (scikit-learn style).

Features are three blocks stacked side by side: TF-IDF over segmented Vietnamese words (1-2
grams), TF-IDF over character n-grams (robust to typos, teencode and missing diacritics) and the
sentence embedding (meaning beyond shared words). A linear SVM scores them and a temperature
calibration (one temperature for all classes, fitted on held-out folds; ``calibration="sigmoid"``
or ``"isotonic"`` uses scikit-learn's instead) turns scores into probabilities that mean something,
so a threshold can abstain.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize, minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from triage.errors import InvalidInput, ModelIncompatible, ModelMissing, NotFitted
from triage.nlp.embed import Embedder
from triage.nlp.manifest import ROUTER, read_manifest, versions, write_manifest
from triage.nlp.text import segment_joined

ESTIMATOR_FILE = "router.joblib"


@dataclass(frozen=True)
class Prediction:
    """One ranked candidate: the label and its calibrated probability."""

    label: str
    score: float


# Regularisation strengths the router chooses among by cross-fitted log-loss (Router.fit). Measured
# (5-fold CV on train): UIT-VSFC feedback is best at 0.1-0.15, the Zalo legal questions at 0.5-1.
DEFAULT_C_GRID: tuple[float, ...] = (0.1, 0.3, 1.0)
# How much the embedding counts against the TF-IDF blocks, searched with C on the same folds:
# short feedback wants it at 2 (UIT-VSFC), long news articles, whose embedding sees only the
# opening, at 1 (VNTC held-out accuracy 0.9342 at 1 against 0.9286 at 2, plain SVM).
DEFAULT_EMBEDDING_WEIGHTS: tuple[float, ...] = (1.0, 2.0)
# Above this many non-zero feature values (what an SVM fit's cost follows) the C x weight search runs
# on a stratified sample of rows holding about that many, and the chosen model is fitted (and calibrated)
# once on everything, so the search's cost stops growing with the data. A row count would treat a
# 40-character comment like a 2,000-character article: UIT-VSFC's 11,426 comments hold ~6 million
# (~535 a row, 384 of them the embedding), so they keep the full search; VNTC articles hold ~3,300 a
# row, so the search sees ~6,000 of them (19 SVM fits on all 27,000 before; 18 on 4,000 and 2 on all now).
DEFAULT_SEARCH_MAX_NONZEROS = 20_000_000
# Share of the rows held out to fit the temperature when the search ran on a sample (one extra SVM fit
# instead of one per fold; ~5,000 held-out rows are plenty for one temperature and a bias per class).
CALIBRATION_HOLDOUT = 0.2

_SEGMENT_CACHE: dict[str, str] = {}
# Below this many characters to segment (~10 s of one core) processes are not worth starting.
PARALLEL_SEGMENT_CHARS = 400_000
_SEGMENT_CACHE_MAX = 200_000


def _segmented(text: str) -> str:
    # Segmentation dominates TF-IDF cost; cross-validation and retraining see the same texts again.
    hit = _SEGMENT_CACHE.get(text)
    if hit is None:
        hit = segment_joined(text)
        if len(_SEGMENT_CACHE) >= _SEGMENT_CACHE_MAX:
            _SEGMENT_CACHE.clear()
        _SEGMENT_CACHE[text] = hit
    return hit


def clear_segmentation_cache() -> None:
    """Forget every segmented text (a benchmark timing a fresh process's training)."""
    _SEGMENT_CACHE.clear()


def warm_segmentation(texts: Sequence[str], processes: int = 0) -> None:
    """Segment many texts in parallel processes up front (long articles: ~20-45/s per core).

    Short sets are segmented here (starting processes costs more than it saves). Off the main thread
    (a service's retrain job) the workers come from a fork server, never a fork of a threaded process.
    """
    todo = [t for t in dict.fromkeys(texts) if t not in _SEGMENT_CACHE]
    workers = processes or (os.cpu_count() or 1)
    if workers < 2 or len(todo) < 200 or sum(map(len, todo)) < PARALLEL_SEGMENT_CHARS:
        for t in todo:
            _segmented(t)
        return
    main = threading.current_thread() is threading.main_thread()
    context = None if main else multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for t, seg in zip(todo, pool.map(segment_joined, todo, chunksize=64), strict=True):
            if len(_SEGMENT_CACHE) < _SEGMENT_CACHE_MAX:
                _SEGMENT_CACHE[t] = seg


def _word_analyzer(text: str) -> list[str]:
    tokens = _segmented(text).lower().split()
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


def data_hash(texts: Sequence[str], labels: Sequence[Any] | np.ndarray) -> str:
    """A stable fingerprint of a training set, for manifests and lineage."""
    h = hashlib.sha256()
    for t, y in zip(texts, labels, strict=True):
        h.update(t.encode("utf-8"))
        h.update(b"\x1f")
        h.update(str(y).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()


class LabelRanker:
    """``predict`` and ``predict_top_k`` for any estimator with ``predict_proba`` and ``classes_``."""

    classes_: np.ndarray

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        proba = self.predict_proba(texts, embeddings)
        return np.asarray(self.classes_[proba.argmax(axis=1)]) if len(proba) else np.asarray([], dtype=str)

    def predict_top_k(
        self, texts: Sequence[str], k: int = 3, embeddings: np.ndarray | None = None
    ) -> list[list[Prediction]]:
        if k < 1:
            raise InvalidInput("k must be >= 1")
        return top_k(self.predict_proba(texts, embeddings), self.classes_, k)


class Router(LabelRanker, ClassifierMixin, BaseEstimator):
    """Calibrated linear classifier over words, characters and embeddings.

    ``embedder=None`` trains on TF-IDF only (useful without a built encoder). ``fit`` and the
    predict methods accept precomputed ``embeddings`` so a caller that already encoded the texts
    (the pipeline, cross-validation) never encodes twice. The TF-IDF blocks read up to
    ``max_chars`` (20,000: as much as the service accepts in one submission); only the embedding
    is cut to ``embed_max_chars``, because a long article's ending still names its topic in words.

    ``C`` and ``embedding_weight`` may be grids: ``fit`` chooses the pair with the lowest cross-fitted,
    calibrated log-loss. Up to ``search_max_nonzeros`` non-zero feature values that search (and the
    temperature) uses every row; above it the search runs on a stratified sample of rows holding about
    that many, and the chosen SVM is fitted on every row with its temperature from a held-out
    ``CALIBRATION_HOLDOUT`` share (``None``: always search on everything). ``n_jobs`` fits that many
    SVMs at once in threads (liblinear releases the GIL).
    """

    def __init__(
        self,
        *,
        embedder: Embedder | None = None,
        use_words: bool = True,
        use_chars: bool = True,
        char_ngrams: tuple[int, int] = (2, 5),
        max_char_features: int | None = 300_000,
        embedding_weight: float | Sequence[float] = DEFAULT_EMBEDDING_WEIGHTS,
        max_chars: int = 20_000,
        embed_max_chars: int = 1000,
        C: float | Sequence[float] = DEFAULT_C_GRID,
        class_weight: str | None = "balanced",
        calibration: str = "temperature",
        calibration_folds: int = 3,
        calibration_bias: bool = True,
        abstain_threshold: float = 0.0,
        search_max_nonzeros: int | None = DEFAULT_SEARCH_MAX_NONZEROS,
        n_jobs: int = 1,
    ) -> None:
        self.embedder = embedder
        self.use_words = use_words
        self.use_chars = use_chars
        self.char_ngrams = char_ngrams
        self.max_char_features = max_char_features
        self.embedding_weight = embedding_weight
        self.max_chars = max_chars
        self.embed_max_chars = embed_max_chars
        self.C = C
        self.class_weight = class_weight
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.calibration_bias = calibration_bias
        self.abstain_threshold = abstain_threshold
        self.search_max_nonzeros = search_max_nonzeros
        self.n_jobs = n_jobs

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Routers saved before search_max_nonzeros and n_jobs existed load with the behaviour they were fitted with.
        state.setdefault("search_max_nonzeros", None)
        state.setdefault("n_jobs", 1)
        super().__setstate__(state)

    # ---- features -------------------------------------------------------------------------
    def _clip(self, texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise InvalidInput("pass a list of texts, not a single string")
        out = []
        for t in texts:
            if not isinstance(t, str):
                raise InvalidInput(f"texts must be str, got {type(t).__name__}")
            out.append(t[: self.max_chars])
        return out

    def _embed(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray | None:
        if max(self._weights()) <= 0:
            return None
        if embeddings is not None:
            emb = np.asarray(embeddings, dtype=np.float32)
            if emb.shape[0] != len(texts):
                raise InvalidInput(f"{emb.shape[0]} embeddings for {len(texts)} texts")
            return emb
        if self.embedder is None:
            return None
        return self.embed_texts(texts)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts exactly as fit/predict would (the opening ``embed_max_chars`` of each).

        Long articles are cut because their opening carries the topic and a 512-token pass costs
        ~15x a question-length one; callers precompute with this to encode each text only once.
        """
        if self.embedder is None:
            raise ModelMissing("this router has no embedder")
        return self.embedder.encode([t[: self.embed_max_chars] for t in self._clip(texts)])

    def _features(self, texts: list[str], emb: np.ndarray | None, *, fit: bool) -> sp.csr_matrix:
        blocks: list[Any] = []
        if self.use_words:
            if fit:
                self.word_vectorizer_ = TfidfVectorizer(
                    analyzer=_word_analyzer, sublinear_tf=True, min_df=1, dtype=np.float32
                )
                blocks.append(self.word_vectorizer_.fit_transform(texts))
            else:
                blocks.append(self.word_vectorizer_.transform(texts))
        if self.use_chars:
            if fit:
                self.char_vectorizer_ = TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=self.char_ngrams,
                    lowercase=True,
                    sublinear_tf=True,
                    min_df=2,
                    max_features=self.max_char_features,
                    dtype=np.float32,
                )
                blocks.append(self.char_vectorizer_.fit_transform(texts))
            else:
                blocks.append(self.char_vectorizer_.transform(texts))
        if fit:
            self.embedding_dim_ = 0 if emb is None else int(emb.shape[1])
        if self.embedding_dim_:
            if emb is None:
                raise ModelMissing("this router was trained with embeddings: give it an embedder")
            if emb.shape[1] != self.embedding_dim_:
                raise InvalidInput(f"embedding dimension {emb.shape[1]} != trained {self.embedding_dim_}")
            # Unscaled: the model weighs the embedding (BlockScaledSVC), so the search tries weights on one matrix.
            blocks.append(sp.csr_matrix(emb))
        if not blocks:
            raise InvalidInput("no feature block enabled")
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    # ---- estimator API --------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[Any], embeddings: np.ndarray | None = None) -> Router:
        items = self._clip(texts)
        y = np.asarray([str(v) for v in labels])
        if len(items) != len(y):
            raise InvalidInput(f"{len(items)} texts but {len(y)} labels")
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise InvalidInput("need at least two distinct labels to train a router")
        weights = self._weights()
        emb = self._embed(items, embeddings)
        started = time.perf_counter()
        X = self._features(items, emb, fit=True)
        self.timings_ = {"features": round(time.perf_counter() - started, 2)}
        # Calibration is cross-fitted: every class needs one example per fold. Real label sets have
        # a long tail (a field seen once), so classes below that are repeated rather than dropped;
        # their probabilities are then less reliable, which the manifest records.
        folds = int(max(2, min(self.calibration_folds, counts.min() if counts.min() >= 2 else 2)))
        rare = {c for c, n in zip(classes, counts, strict=True) if n < folds}
        rows = np.arange(len(y))
        if rare:
            extra = [i for i in rows if y[i] in rare for _ in range(folds - 1)]
            rows = np.concatenate([rows, np.asarray(extra, dtype=int)])
        grid = self._c_grid()
        if not self.embedding_dim_:
            weights = [weights[0]]  # nothing to weigh
        svm = BlockScaledSVC(C=grid[0], class_weight=self.class_weight, scale=weights[0], n_scaled=self.embedding_dim_)
        model: Any
        pairs = [(c, w) for w in weights for c in grid]
        search = [{"C": c, "scale": w} for c, w in pairs] if len(pairs) > 1 else []
        self.C_, self.embedding_weight_ = grid[0], weights[0]
        self.c_log_loss_, self.search_log_loss_ = {}, {}
        temperature = self.calibration == "temperature"
        # A large set: search on a stratified sample, then fit the chosen model once on every row.
        sample = self._search_sample(y[rows], np.diff(X.indptr)[rows], folds) if search else None
        self.search_rows_ = len(rows) if sample is None else len(sample)
        jobs = max(1, int(self.n_jobs))
        if temperature or search:
            # The non-temperature path only borrows the search (no refit): the C it would choose.
            refit = temperature and sample is None
            tc = TemperatureCalibrated(
                svm, folds=folds, fit_bias=self.calibration_bias, grid=search, refit=refit, n_jobs=jobs
            )
            searched = rows if sample is None else rows[sample]
            tc.fit(X[searched], y[searched])
            self.C_ = float(tc.best_params_.get("C", grid[0]))
            self.embedding_weight_ = float(tc.best_params_.get("scale", weights[0]))
            if search:
                losses = dict(zip(pairs, tc.grid_log_loss_, strict=True))
                self.search_log_loss_ = {f"C={c}, embedding_weight={w}": v for (c, w), v in losses.items()}
                self.c_log_loss_ = {c: v for (c, w), v in losses.items() if w == self.embedding_weight_}
            self.timings_["search"] = round(time.perf_counter() - started - self.timings_["features"], 2)
            if temperature and sample is not None:
                chosen = clone(svm).set_params(C=self.C_, scale=self.embedding_weight_)
                tc = TemperatureCalibrated(
                    chosen, folds=folds, fit_bias=self.calibration_bias, holdout=CALIBRATION_HOLDOUT, n_jobs=jobs
                )
                tc.fit(X[rows], y[rows])
        self.calibration_rows_ = 0
        if temperature:
            model = tc
            self.calibration_rows_ = int(tc.calibration_rows_)
        else:
            # ensemble=False: one SVM on all rows ranks the labels; the folds only fit the calibration.
            svm = svm.set_params(C=self.C_, scale=self.embedding_weight_)
            model = CalibratedClassifierCV(svm, method=self.calibration, cv=folds, ensemble=False)
            model.fit(X[rows], y[rows])
        self.timings_["total"] = round(time.perf_counter() - started, 2)
        self.rare_classes_ = sorted(str(c) for c in rare)
        self.model_ = model
        self.classes_ = model.classes_
        self.n_train_ = len(items)
        self.data_hash_ = data_hash(items, y)
        self.embedder_id_ = getattr(self.embedder, "model_id", None) if self.embedding_dim_ else None
        return self

    def _search_sample(self, y: np.ndarray, nonzeros: np.ndarray, folds: int) -> np.ndarray | None:
        """Positions of a stratified sample of rows holding about ``search_max_nonzeros`` feature
        values (``nonzeros``: per row), or None to search on every row.

        Each class keeps its share (at least ``folds`` rows, so every fold sees it); seed 0, sorted.
        """
        limit, total = self.search_max_nonzeros, int(nonzeros.sum())
        if limit is None or total <= limit:
            return None
        if limit < 1:
            raise InvalidInput(f"search_max_nonzeros must be positive or None, got {limit!r}")
        size = max(2, round(len(y) * limit / total))
        rng = np.random.default_rng(0)
        picked = []
        for c in np.unique(y):
            where = np.flatnonzero(y == c)
            quota = min(len(where), max(folds, round(size * len(where) / len(y))))
            picked.append(rng.choice(where, size=quota, replace=False))
        return np.sort(np.concatenate(picked))

    def _c_grid(self) -> list[float]:
        values = _floats(self.C)
        if not values or any(not c > 0 for c in values):
            raise InvalidInput(f"C must be a positive number or a non-empty list of them, got {self.C!r}")
        return values

    def _weights(self) -> list[float]:
        values = _floats(self.embedding_weight)
        if not values or any(not v >= 0 for v in values):
            raise InvalidInput(
                f"embedding_weight must be >= 0 or a non-empty list of such, got {self.embedding_weight!r}"
            )
        return values

    def _check(self) -> None:
        try:
            check_is_fitted(self, "model_")
        except Exception as exc:
            raise NotFitted("Router is not fitted: call fit() or Router.load()") from exc

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        self._check()
        items = self._clip(texts)
        if not items:
            return np.zeros((0, len(self.classes_)), dtype=np.float64)
        emb = self._embed(items, embeddings) if self.embedding_dim_ else None
        proba: np.ndarray = self.model_.predict_proba(self._features(items, emb, fit=False))
        return proba

    def predict_or_abstain(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[str | None]:
        """The top label, or None where its probability is below ``abstain_threshold``."""
        proba = self.predict_proba(texts, embeddings)
        best = proba.argmax(axis=1)
        return [None if proba[i, j] < self.abstain_threshold else str(self.classes_[j]) for i, j in enumerate(best)]

    # ---- persistence ----------------------------------------------------------------------
    def save(self, folder: Path, *, metrics: dict[str, Any] | None = None) -> Path:
        """Write the fitted estimator (without the embedder) and a manifest (kind "router") to ``folder``."""
        self._check()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        embedder, self.embedder = self.embedder, None
        try:
            joblib.dump(self, folder / ESTIMATOR_FILE, compress=3)
        finally:
            self.embedder = embedder
        fields = {
            "classes": [str(c) for c in self.classes_],
            "n_train": self.n_train_,
            "data_hash": self.data_hash_,
            "embedder_id": self.embedder_id_,
            "embedding_dim": self.embedding_dim_,
            "rare_classes": self.rare_classes_,
            "chosen_C": self.C_,
            "C_out_of_fold_log_loss": {str(c): v for c, v in self.c_log_loss_.items()},
            "chosen_embedding_weight": self.embedding_weight_,
            "search_out_of_fold_log_loss": self.search_log_loss_,
            "search_rows": getattr(self, "search_rows_", self.n_train_),
            "calibration_rows": getattr(self, "calibration_rows_", None),
            "params": {k: v for k, v in self.get_params().items() if k != "embedder"},
            "metrics": metrics or {},
            "versions": versions(),
        }
        write_manifest(folder, ROUTER, fields)
        return folder

    @classmethod
    def load(cls, folder: Path, *, embedder: Embedder | None = None) -> Router:
        """Load a saved router; the embedder must be the one it was trained with."""
        folder = Path(folder)
        read_manifest(folder, ROUTER)  # refuses other kinds and layouts this version cannot read
        path = folder / ESTIMATOR_FILE
        if not path.exists():
            raise ModelMissing(f"no router at {folder}; train one with `triage train`")
        router = joblib.load(path)
        if not isinstance(router, cls):
            raise ModelIncompatible(f"{path} does not hold a Router; train one with `triage train`")
        if router.embedding_dim_:
            if embedder is None:
                raise ModelMissing(f"router at {folder} needs the encoder {router.embedder_id_!r}")
            if router.embedder_id_ and embedder.model_id.split("+")[0] != router.embedder_id_.split("+")[0]:
                raise ModelIncompatible(
                    f"router at {folder} was trained with encoder {router.embedder_id_!r}, not {embedder.model_id!r}"
                )
        router.embedder = embedder
        return router


class BlockScaledSVC(ClassifierMixin, BaseEstimator):
    """LinearSVC whose last ``n_scaled`` feature columns (the embedding) are multiplied by ``scale``.

    Weighing the embedding inside the estimator lets the C search also choose that weight on the
    same folds and the same feature matrix, instead of rebuilding features per candidate.
    """

    def __init__(self, C: float = 1.0, class_weight: str | None = None, scale: float = 1.0, n_scaled: int = 0) -> None:
        self.C = C
        self.class_weight = class_weight
        self.scale = scale
        self.n_scaled = n_scaled

    def _scaled(self, X: Any) -> Any:
        if not self.n_scaled or self.scale == 1.0:
            return X
        d = np.ones(X.shape[1], dtype=np.float32)
        d[-self.n_scaled :] = self.scale
        return sp.csr_matrix(X) @ sp.diags(d, format="csr")

    def fit(self, X: Any, y: Any) -> BlockScaledSVC:
        self.svm_ = LinearSVC(C=self.C, class_weight=self.class_weight).fit(self._scaled(X), y)
        self.classes_ = self.svm_.classes_
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(self.svm_.decision_function(self._scaled(X)))

    def predict(self, X: Any) -> np.ndarray:
        s = self.decision_function(X)
        return np.asarray(self.classes_[(s > 0).astype(int) if s.ndim == 1 else s.argmax(axis=1)])


def _map_threads(fn: Any, items: list[Any], n_jobs: int) -> list[Any]:
    """``[fn(x) for x in items]``, ``n_jobs`` at a time in threads (the SVM fits release the GIL)."""
    if n_jobs <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(n_jobs, len(items))) as pool:
        return list(pool.map(fn, items))


def _floats(value: float | Sequence[float]) -> list[float]:
    """One number or a grid of them, as a list (searched parameters accept either)."""
    return [float(value)] if isinstance(value, int | float) else [float(v) for v in value]


def _margins(model: Any, X: Any) -> np.ndarray:
    s = np.asarray(model.decision_function(X), dtype=np.float64)
    return np.stack([-s / 2, s / 2], axis=1) if s.ndim == 1 else s


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class TemperatureCalibrated:
    """softmax(SVM margins / T + b), T and b fitted on cross-validated margins by log-loss.

    One temperature for all classes makes the probabilities honest without per-class curves,
    which overfit rare labels on small data; a lightly penalised per-class bias corrects the
    priors that class weighting shifted (``fit_bias=False`` keeps the SVM's ranking exactly).
    ``grid`` (parameter sets for the estimator) is searched on the same folds: the set whose
    calibrated out-of-fold log-loss is lowest wins, so the regularisation follows the data
    (short, noisy feedback wants a strong one; a few hundred legal questions a weak one).
    ``holdout`` > 0 replaces the folds by one stratified held-out share (one fit instead of
    ``folds``: for large sets, where that share alone holds thousands of rows); ``n_jobs`` fits that
    many models at once in threads.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        folds: int = 3,
        fit_bias: bool = True,
        bias_l2: float = 0.01,
        grid: Sequence[dict[str, Any]] = (),
        refit: bool = True,
        holdout: float = 0.0,
        n_jobs: int = 1,
    ) -> None:
        self.estimator = estimator
        self.folds = folds
        self.fit_bias = fit_bias
        self.bias_l2 = bias_l2
        self.grid = grid
        self.refit = refit
        self.holdout = holdout
        self.n_jobs = n_jobs

    def _splits(self, X: Any, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``folds`` stratified folds (every row scored once), or one stratified held-out share."""
        if self.holdout:
            split = StratifiedShuffleSplit(n_splits=1, test_size=self.holdout, random_state=0)
            return list(split.split(X, y))
        return list(StratifiedKFold(self.folds, shuffle=True, random_state=0).split(X, y))

    def fit(self, X: Any, y: np.ndarray) -> TemperatureCalibrated:
        self.classes_ = np.unique(y)
        col = {c: j for j, c in enumerate(self.classes_)}
        target = np.asarray([col[v] for v in y])
        splits = self._splits(X, y)
        scored = np.sort(np.concatenate([te for _, te in splits]))
        candidates = list(self.grid) or [{}]
        # Every (candidate, fold) fit and the final refit of a lone candidate are independent.
        tasks: list[tuple[int, np.ndarray | None]] = [(i, tr) for i in range(len(candidates)) for tr, _ in splits]
        final = self.refit and len(candidates) == 1
        if final:
            tasks.append((0, None))

        def run(task: tuple[int, np.ndarray | None]) -> Any:
            i, tr = task
            est = clone(self.estimator).set_params(**candidates[i])
            return est.fit(X, y) if tr is None else est.fit(X[tr], y[tr])

        fitted = _map_threads(run, tasks, self.n_jobs)
        if final:
            self.estimator_ = fitted.pop()
        self.grid_log_loss_: list[float] = []
        best: tuple[float, dict[str, Any], float, np.ndarray] | None = None
        for i, params in enumerate(candidates):
            margins = np.zeros((len(y), len(self.classes_)))
            for part, (_, te) in zip(fitted[i * len(splits) : (i + 1) * len(splits)], splits, strict=True):
                cols = [col[c] for c in part.classes_]
                m = _margins(part, X[te])
                block = np.full((len(te), len(self.classes_)), m.min() - 1.0)
                block[:, cols] = m
                margins[te] = block
            inv_t, bias, loss = self._calibrate(margins[scored], target[scored])
            self.grid_log_loss_.append(round(loss, 5))
            if best is None or loss < best[0]:
                best = (loss, params, inv_t, bias)
        assert best is not None
        _, self.best_params_, self.inv_temperature_, self.bias_ = best
        self.calibration_rows_ = len(scored)
        if self.refit and not final:  # refit=False: only the search (best_params_, grid_log_loss_) is wanted
            self.estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(X, y)
        return self

    def _calibrate(self, margins: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, float]:
        """(1/T, bias, out-of-fold log-loss without the bias penalty) for one set of margins."""
        rows = np.arange(len(target))
        k = margins.shape[1]

        def data_loss(inv_t: float, bias: np.ndarray) -> float:
            p = softmax(margins * inv_t + bias)
            return float(-np.log(np.clip(p[rows, target], 1e-12, None)).mean())

        def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
            inv_t, bias = np.exp(params[0]), params[1:]
            z = margins * inv_t + bias
            p = softmax(z)
            loss = -np.log(np.clip(p[rows, target], 1e-12, None)).mean() + self.bias_l2 * float(bias @ bias)
            g = p.copy()
            g[rows, target] -= 1.0
            g /= len(target)
            grad_b = g.sum(axis=0) + 2 * self.bias_l2 * bias
            grad_t = float((g * margins).sum()) * inv_t
            return float(loss), np.concatenate([[grad_t], grad_b])

        if not self.fit_bias:
            res_t = minimize_scalar(
                lambda lt: nll(np.concatenate([[lt], np.zeros(k)]))[0], bounds=(-3.0, 6.0), method="bounded"
            )
            inv_t, bias = float(np.exp(res_t.x)), np.zeros(k)
        else:
            res = minimize(nll, np.zeros(k + 1), jac=True, method="L-BFGS-B")
            inv_t, bias = float(np.exp(res.x[0])), np.asarray(res.x[1:])
        return inv_t, bias, data_loss(inv_t, bias)

    def predict_proba(self, X: Any) -> np.ndarray:
        return softmax(_margins(self.estimator_, X) * self.inv_temperature_ + self.bias_)


def fit_temperature(
    scores: np.ndarray,
    classes: Sequence[Any] | np.ndarray,
    labels: Sequence[str],
    *,
    log_bounds: tuple[float, float] = (-3.0, 3.0),
) -> float:
    """The one temperature T minimising the log-loss of softmax(scores / T) on labelled rows.

    Rows whose label is not among ``classes`` are ignored (T = 1 when none is left). One scalar keeps
    the ranking of every row and cannot overfit a small held-out set.
    """
    col = {str(c): j for j, c in enumerate(classes)}
    keep = [i for i, y in enumerate(labels) if y in col]
    if not keep:
        return 1.0
    target = np.asarray([col[labels[i]] for i in keep])
    z = scores[keep]

    def nll(log_t: float) -> float:
        p = softmax(z / np.exp(log_t))
        return float(-np.log(np.clip(p[np.arange(len(target)), target], 1e-12, None)).mean())

    return float(np.exp(minimize_scalar(nll, bounds=log_bounds, method="bounded").x))


def top_k(proba: np.ndarray, classes: Sequence[Any] | np.ndarray, k: int) -> list[list[Prediction]]:
    """Rank the columns of each row of ``proba``; ties keep column order."""
    k = min(k, proba.shape[1]) if proba.ndim == 2 else 0
    out: list[list[Prediction]] = []
    for row in proba:
        idx = np.argsort(-row, kind="stable")[:k]
        out.append([Prediction(str(classes[j]), float(row[j])) for j in idx])
    return out


def prediction_dicts(preds: list[Prediction]) -> list[dict[str, Any]]:
    """JSON-ready form used by the CLI and the service."""
    return [asdict(p) for p in preds]
