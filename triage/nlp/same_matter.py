"""Same matter or only the same subject: a calibrated pair classifier over embeddings and matter facts.

The raw cosine of two e5 embeddings says two texts are on the same *subject*: "Thủ tục cấp mới Giấy
phép lái xe" and "Thủ tục cấp đổi Giấy phép lái xe bị hỏng" sit at 0.93-0.95, above the vnPara
paraphrase threshold, yet they are two requests. ``SameMatterScorer`` re-scores a pair with:

* ``cosine``: the e5 cosine (the candidates come from the faiss index by it);
* ``adapter``: the cosine after a low-rank linear adapter on the frozen e5 vectors, trained
  contrastively (InfoNCE with in-batch and hard negatives, torch on CPU) on weak same-matter pairs:
  questions of the public-service portal sharing a procedure (hard negatives: same ministry, other
  procedure), legal questions citing the same document, vnPara paraphrases (calibration half only);
* matter facts: numbers and dates, document ids ("15/2020/NĐ-CP"), provinces, capitalised names,
  the action ("cấp mới" / "cấp đổi" / "gia hạn" ...) and the aspect asked ("trình tự" / "hồ sơ" /
  "lệ phí" ...), lexical overlap of segmented words, the words that differ, character TF-IDF
  cosine (hashed character 2-4 grams with IDF), length ratio;

combined by gradient-boosted trees held monotone in each feature (more overlap never lowers the
score), calibrated by a sigmoid fitted on out-of-fold scores (groups of pairs kept together).
``predict_proba`` gives P(same matter). ``threshold_`` is the probability from which a similar case
is a likely duplicate, chosen for a stated precision (``precision_``, 0.99) on the calibration pairs
where a duplicate is the same request sent again (a vnPara paraphrase, a portal question resent with
a courtesy opening or closing or signed by someone else) and the negatives are distinct requests as
intake meets them (each training portal question and its five nearest others, vnPara
non-paraphrases); ``campaign_threshold_`` is the stricter one campaigns use (``campaign_precision``,
0.999: at 0.99 and 0.995 near-identical portal questions about different awards formed campaigns).

The fitted scorer is a compact ``.npz`` (arrays only, loaded with ``allow_pickle=False``) shipped in
``triage/data/same_matter.npz`` and rebuilt from the shared public data by
``scripts/build_same_matter.py`` (fixed seed), so every install scores alike without the data.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from triage.errors import InvalidInput, ModelIncompatible, ModelMissing
from triage.nlp.embed import Embedder

PACKAGED = "same_matter.npz"
FORMAT = 1
MAX_CHARS = 1000  # a pair is judged on the first 1,000 characters of each text (title and opening)
HASH_BITS = 16

# Actions a request asks for; the longest phrase found wins ("cấp mới" before "cấp").
ACTIONS: tuple[str, ...] = (
    "cấp mới", "cấp lại", "cấp đổi", "đổi", "gia hạn", "điều chỉnh", "thu hồi", "hủy", "huỷ", "đăng ký lại",
    "đăng ký", "xóa", "xoá", "chuyển đổi", "chuyển nhượng", "chuyển", "sửa đổi", "bổ sung", "tạm ngừng", "chấm dứt",
    "giải thể", "thành lập", "công nhận", "xác nhận", "miễn", "giảm", "hoàn thuế", "hoàn", "khiếu nại", "tố cáo",
    "đính chính", "thay đổi", "tra cứu", "khai báo", "nộp", "cấp", "phê duyệt", "thẩm định", "kiểm tra",
    "tặng thưởng", "xét tặng", "trợ cấp", "hỗ trợ", "bồi thường", "xử phạt", "cho phép", "tuyển chọn", "tuyển dụng",
    "xuất ngũ", "nhập", "xuất", "mua", "bán", "thuê", "tách", "hợp nhất", "sáp nhập",
)  # fmt: skip
# What about the procedure is asked.
ASPECTS: tuple[str, ...] = (
    "trình tự", "cách thức", "thành phần", "hồ sơ", "số lượng", "thời hạn", "thời gian", "bao lâu", "lệ phí",
    "phí", "chi phí", "bao nhiêu", "điều kiện", "tiêu chuẩn", "thẩm quyền", "cơ quan", "ở đâu", "nơi", "mẫu",
    "biểu mẫu", "tờ khai", "kết quả", "đối tượng", "độ tuổi", "căn cứ", "mức", "quyền", "nghĩa vụ",
    "trách nhiệm", "xử lý", "có được", "có phải", "bắt buộc",
)  # fmt: skip
FEATURES: tuple[str, ...] = (
    "cosine",
    "adapter",
    "char_tfidf",
    "word_jaccard",
    "word_containment_min",
    "word_containment_max",
    "differing_words",
    "number_jaccard",
    "number_mismatch",
    "doc_id_match",
    "doc_id_mismatch",
    "place_mismatch",
    "name_jaccard",
    "name_mismatch",
    "action_match",
    "action_mismatch",
    "aspect_match",
    "aspect_mismatch",
    "length_ratio",
    "log_min_length",
)
# How each feature may move P(same matter) (+1 up, -1 down, 0 free): the trees are held to it, so more
# overlap never lowers the probability and two identical texts get the highest score their length allows.
MONOTONE: tuple[int, ...] = (1, 1, 1, 1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1, -1, 1, -1, 1, 0)

_NUMBER_RE = re.compile(r"\d+(?:[.,/-]\d+)*")
_DOC_ID_RE = re.compile(r"\d+(?:/\d{2,4})?/[A-ZĐa-zđ]+(?:[-–][A-ZĐa-zđ]+)*")
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_CAPITAL_RE = re.compile(r"(?<=[^.!?:;\n]\s)([A-ZÀ-ỸĐ][\wÀ-ỹ]*(?:\s+[A-ZÀ-ỸĐ][\wÀ-ỹ]*)*)")


def _phrases(table: Sequence[str]) -> re.Pattern[str]:
    alts = sorted(set(table), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(a) for a in alts) + r")(?!\w)")


_ACTION_RE = _phrases(ACTIONS)
# Courtesy carries no matter: "Xin hỏi", "Cho tôi hỏi", "Xin cảm ơn" are left out of the word features.
COURTESY: tuple[str, ...] = (
    "xin hỏi", "cho tôi hỏi", "cho em hỏi", "tôi muốn hỏi", "em muốn hỏi", "xin cho biết", "đề nghị cho biết",
    "kính gửi", "xin cảm ơn", "trân trọng cảm ơn", "cảm ơn", "trân trọng", "mong được trả lời sớm",
    "nhờ tư vấn giúp", "xin tư vấn", "ạ",
)  # fmt: skip
_COURTESY_RE = _phrases(COURTESY)
_ASPECT_RE = _phrases(ASPECTS)


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    text = resources.files("triage").joinpath("data").joinpath("vietnamese_stopwords.txt").read_text("utf-8")
    words = {w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#")}
    return frozenset(words | {"như_thế_nào", "thế_nào", "được", "không", "gì", "nào", "?"})


@dataclass(frozen=True)
class _Facts:
    """What one text says that decides a matter (computed once per text, cached)."""

    words: frozenset[str]
    content: frozenset[str]
    numbers: frozenset[str]
    doc_ids: frozenset[str]
    places: frozenset[str]
    names: frozenset[str]
    actions: frozenset[str]
    aspects: frozenset[str]
    length: int


@lru_cache(maxsize=8192)
def facts(text: str) -> _Facts:
    """The matter facts of one (normalised) text, on its first ``MAX_CHARS`` characters."""
    from triage.nlp.agencies import default_registry
    from triage.nlp.text import segment

    head = text[:MAX_CHARS]
    low = head.casefold()
    plain = _COURTESY_RE.sub(" ", low)
    words = [w.replace(" ", "_") for w in segment(plain)]
    stop = _stopwords()
    words = [w for w in words if _WORD_RE.search(w)]
    doc_ids = {d.casefold().replace("–", "-") for d in _DOC_ID_RE.findall(head) if "/" in d}
    numbers = set(_NUMBER_RE.findall(head))
    try:
        places = {a.code for a in default_registry().find_provinces(head)}
    except Exception:
        places = set()
    names = {m.group(1).casefold() for m in _CAPITAL_RE.finditer(head)}
    return _Facts(
        words=frozenset(words),
        content=frozenset(w for w in words if w not in stop),
        numbers=frozenset(numbers),
        doc_ids=frozenset(doc_ids),
        places=frozenset(places),
        names=frozenset(names),
        actions=frozenset(_ACTION_RE.findall(low)),
        aspects=frozenset(_ASPECT_RE.findall(low)),
        length=len(head),
    )


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _mismatch(a: frozenset[str], b: frozenset[str]) -> float:
    """1 when both texts state the fact and the statements differ, else 0."""
    return float(bool(a) and bool(b) and a != b)


def _match(a: frozenset[str], b: frozenset[str]) -> float:
    return float(bool(a & b))


def fact_features(a: _Facts, b: _Facts) -> list[float]:
    """Every feature but the three cosines, in ``FEATURES`` order."""
    inter = len(a.content & b.content)
    ca, cb = max(len(a.content), 1), max(len(b.content), 1)
    diff = len(a.content ^ b.content)
    return [
        _jaccard(a.words, b.words),
        inter / max(ca, cb),
        inter / min(ca, cb),
        math.log1p(diff),
        _jaccard(a.numbers, b.numbers),
        _mismatch(a.numbers, b.numbers),
        _match(a.doc_ids, b.doc_ids),
        _mismatch(a.doc_ids, b.doc_ids),
        _mismatch(a.places, b.places),
        _jaccard(a.names, b.names),
        _mismatch(a.names, b.names),
        _match(a.actions, b.actions),
        _mismatch(a.actions, b.actions),
        _match(a.aspects, b.aspects),
        _mismatch(a.aspects, b.aspects),
        min(a.length, b.length) / max(a.length, b.length, 1),
        math.log1p(min(a.length, b.length)),
    ]


# ---- character TF-IDF over hashed 2-4 grams ------------------------------------------------------
def _char_counts(texts: Sequence[str]) -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 4),
        n_features=2**HASH_BITS,
        alternate_sign=False,
        norm=None,
        lowercase=True,
    )
    return vec.transform([t[:MAX_CHARS] for t in texts])


def char_idf(texts: Sequence[str]) -> np.ndarray:
    """Smoothed IDF of the hashed character n-grams over ``texts`` (as scikit-learn's TfidfTransformer)."""
    counts = _char_counts(texts)
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
    return (np.log((1 + counts.shape[0]) / (1 + df)) + 1).astype(np.float32)


def char_tfidf(texts: Sequence[str], idf: np.ndarray) -> Any:
    """L2-normalised sublinear-TF x IDF rows (sparse)."""
    from sklearn.preprocessing import normalize as l2

    counts = _char_counts(texts).astype(np.float32)
    counts.data = 1 + np.log(counts.data)
    return l2(counts.multiply(idf[None, :]).tocsr())


# ---- the contrastive adapter ---------------------------------------------------------------------
def train_adapter(
    vectors: np.ndarray,
    pairs: np.ndarray,
    *,
    hard: np.ndarray | None = None,
    rank: int = 128,
    epochs: int = 30,
    batch_size: int = 128,
    temperature: float = 0.05,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> np.ndarray:
    """A (d, rank) projection of frozen e5 vectors trained with a symmetric InfoNCE loss.

    ``pairs``: (n, 2) row indices into ``vectors`` of same-matter pairs (anchor, positive); the other
    positives of a batch are its negatives, plus ``hard[i]`` (a row index, -1 for none): a text on
    the same subject but another matter. Initialised to the top principal directions, so training
    starts from a projection that keeps most of the cosine. Deterministic for a seed (CPU, one thread).
    """
    import torch

    if len(pairs) == 0:
        raise InvalidInput("train_adapter needs at least one positive pair")
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    rank = min(rank, vt.shape[0])
    weight = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(vt[:rank].T, dtype=np.float32)))
    opt = torch.optim.AdamW([weight], lr=lr, weight_decay=weight_decay)
    hard_idx = np.full(len(pairs), -1) if hard is None else np.asarray(hard)
    for _ in range(epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2:
                continue
            a = torch.nn.functional.normalize(x[pairs[idx, 0]] @ weight, dim=1)
            b = torch.nn.functional.normalize(x[pairs[idx, 1]] @ weight, dim=1)
            logits = a @ b.T / temperature
            h = hard_idx[idx]
            if (h >= 0).any():
                hv = torch.nn.functional.normalize(x[np.where(h >= 0, h, pairs[idx, 1])] @ weight, dim=1)
                hl = (a * hv).sum(dim=1, keepdim=True) / temperature
                hl = torch.where(torch.from_numpy(h >= 0)[:, None], hl, torch.full_like(hl, -1e4))
                logits_a = torch.cat([logits, hl], dim=1)
            else:
                logits_a = logits
            target = torch.arange(len(idx))
            loss = torch.nn.functional.cross_entropy(logits_a, target) + torch.nn.functional.cross_entropy(
                logits.T, target
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    return weight.detach().numpy().astype(np.float32)


def adapter_cosine(adapter: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    pa, pb = np.asarray(a, np.float32) @ adapter, np.asarray(b, np.float32) @ adapter
    pa /= np.linalg.norm(pa, axis=1, keepdims=True) + 1e-12
    pb /= np.linalg.norm(pb, axis=1, keepdims=True) + 1e-12
    return np.asarray((pa * pb).sum(axis=1), dtype=np.float64)


# ---- the pair classifier -------------------------------------------------------------------------
def _platt(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Sigmoid calibration (Platt): P = 1 / (1 + exp(-(a * score + b))), fitted on out-of-fold scores."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000).fit(x[:, None], y, sample_weight=w)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))), np.float64)


def threshold_for_precision(
    proba: np.ndarray, y: np.ndarray, precision: float, weights: np.ndarray | None = None
) -> float:
    """The lowest probability whose pairs at or above it reach ``precision`` (weighted; 1.0 when none does)."""
    w = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)
    order = np.argsort(-proba, kind="stable")
    p, t, ww = proba[order], y[order], w[order]
    prec = np.cumsum(t * ww) / np.cumsum(ww)
    last = np.r_[p[1:] != p[:-1], True]
    ok = np.where(last & (prec >= precision))[0]
    if not len(ok):
        return 1.0
    return float(p[ok[-1]])


@dataclass(frozen=True)
class Forest:
    """A fitted ``HistGradientBoostingClassifier`` as plain arrays (every tree's nodes, concatenated).

    Prediction walks all trees at once with NumPy; nothing of scikit-learn's private classes is
    kept, so the shipped file is arrays only and loads on any scikit-learn version.
    """

    feature: np.ndarray  # int16 per node
    threshold: np.ndarray  # float64: go left when x <= threshold
    left: np.ndarray  # int32, global node index
    right: np.ndarray
    leaf: np.ndarray  # bool
    value: np.ndarray  # float64, the leaf's raw score
    roots: np.ndarray  # int32, first node of each tree
    baseline: float

    @classmethod
    def from_sklearn(cls, model: Any) -> Forest:
        parts, roots, offset = [], [], 0
        for trees in model._predictors:  # one tree per iteration for a binary problem
            nodes = trees[0].nodes
            if nodes["is_categorical"].any():
                raise InvalidInput("categorical splits are not supported")
            parts.append((nodes, offset))
            roots.append(offset)
            offset += len(nodes)
        cat = np.concatenate([n for n, _ in parts])
        shift = np.concatenate([np.full(len(n), o) for n, o in parts])
        return cls(
            feature=cat["feature_idx"].astype(np.int16),
            threshold=cat["num_threshold"].astype(np.float64),
            left=(cat["left"].astype(np.int64) + shift).astype(np.int32),
            right=(cat["right"].astype(np.int64) + shift).astype(np.int32),
            leaf=cat["is_leaf"].astype(bool),
            value=cat["value"].astype(np.float64),
            roots=np.asarray(roots, np.int32),
            baseline=float(np.ravel(model._baseline_prediction)[0]),
        )

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Raw score (log-odds) per row: baseline plus each tree's leaf value."""
        X = np.asarray(X, np.float64)
        at = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        rows = np.arange(len(X))[:, None]
        while True:
            inner = ~self.leaf[at]
            if not inner.any():
                break
            go_left = X[rows, self.feature[at]] <= self.threshold[at]
            step = np.where(go_left, self.left[at], self.right[at])
            at = np.where(inner, step, at)
        return np.asarray(self.baseline + self.value[at].sum(axis=1), np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "tree_feature": self.feature,
            "tree_threshold": self.threshold,
            "tree_left": self.left,
            "tree_right": self.right,
            "tree_leaf": self.leaf,
            "tree_value": self.value,
            "tree_roots": self.roots,
            "tree_baseline": np.asarray([self.baseline]),
        }

    @classmethod
    def from_arrays(cls, data: Any) -> Forest:
        return cls(
            feature=np.asarray(data["tree_feature"]),
            threshold=np.asarray(data["tree_threshold"]),
            left=np.asarray(data["tree_left"]),
            right=np.asarray(data["tree_right"]),
            leaf=np.asarray(data["tree_leaf"]),
            value=np.asarray(data["tree_value"]),
            roots=np.asarray(data["tree_roots"]),
            baseline=float(data["tree_baseline"][0]),
        )


class SameMatterScorer:
    """P(same matter) for pairs of texts: ``fit(pairs, y)``, ``predict_proba(pairs)``, ``predict(pairs)``.

    ``pairs`` is a sequence of (text_a, text_b), texts already through ``text.normalize``; pass
    ``embeddings=(ea, eb)`` when the e5 vectors are at hand (the index has them), else the
    ``embedder`` encodes the texts. ``adapter_pairs``: (i, j) row pairs of same-matter texts over
    ``adapter_vectors`` for the contrastive adapter (with ``adapter_hard`` negatives); ``groups``
    keeps related pairs in one fold of the out-of-fold calibration.
    """

    card_: dict[str, Any]  # what a loaded scorer's file says of itself (thresholds, training data)

    def __init__(
        self,
        *,
        embedder: Embedder | None = None,
        rank: int = 128,
        epochs: int = 30,
        trees: int = 300,
        leaves: int = 15,
        learning_rate: float = 0.05,
        precision: float = 0.99,
        campaign_precision: float = 0.999,
        folds: int = 4,
        seed: int = 0,
    ) -> None:
        self.embedder = embedder
        self.rank = rank
        self.epochs = epochs
        self.trees = trees
        self.leaves = leaves
        self.learning_rate = learning_rate
        self.precision = precision
        self.campaign_precision = campaign_precision
        self.folds = folds
        self.seed = seed

    # ---- features ----------------------------------------------------------------------------
    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        if self.embedder is None:
            raise InvalidInput("pass embeddings=(ea, eb) or build the scorer with an embedder")
        return self.embedder.encode(list(texts))

    def features(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        embeddings: tuple[np.ndarray, np.ndarray] | None = None,
        adapter: np.ndarray | None = None,
        idf: np.ndarray | None = None,
    ) -> np.ndarray:
        """The (n, len(FEATURES)) feature matrix of ``pairs`` (the fitted adapter and IDF by default)."""
        a_texts = [p[0] for p in pairs]
        b_texts = [p[1] for p in pairs]
        if not pairs:
            return np.zeros((0, len(FEATURES)))
        ea, eb = embeddings if embeddings is not None else (self._vectors(a_texts), self._vectors(b_texts))
        ea, eb = np.asarray(ea, np.float32), np.asarray(eb, np.float32)
        if ea.shape != eb.shape or len(ea) != len(pairs):
            raise InvalidInput(f"embeddings must be two ({len(pairs)}, d) arrays, got {ea.shape} and {eb.shape}")
        adapter = self.adapter_ if adapter is None else adapter
        idf = self.idf_ if idf is None else idf
        cos = (ea * eb).sum(axis=1).astype(np.float64)
        acos = adapter_cosine(adapter, ea, eb)
        uniq = list(dict.fromkeys(a_texts + b_texts))
        where = {t: i for i, t in enumerate(uniq)}
        m = char_tfidf(uniq, idf)
        ia = np.fromiter((where[t] for t in a_texts), dtype=np.int64, count=len(a_texts))
        ib = np.fromiter((where[t] for t in b_texts), dtype=np.int64, count=len(b_texts))
        ctf = np.asarray(m[ia].multiply(m[ib]).sum(axis=1)).ravel()
        rest = np.asarray([fact_features(facts(a), facts(b)) for a, b in pairs], dtype=np.float64)
        return np.column_stack([cos, acos, ctf, rest])

    # ---- fitting -----------------------------------------------------------------------------
    def fit(
        self,
        pairs: Sequence[tuple[str, str]],
        y: Sequence[int] | np.ndarray,
        *,
        embeddings: tuple[np.ndarray, np.ndarray] | None = None,
        groups: Sequence[Any] | np.ndarray | None = None,
        sample_weight: Sequence[float] | np.ndarray | None = None,
        duplicate: Sequence[int] | np.ndarray | None = None,
        adapter_vectors: np.ndarray | None = None,
        adapter_pairs: np.ndarray | None = None,
        adapter_hard: np.ndarray | None = None,
        adapter_groups: Sequence[Any] | np.ndarray | None = None,
        idf_texts: Sequence[str] | None = None,
        model_id: str = "",
    ) -> SameMatterScorer:
        """Adapter (cross-fitted), char IDF, gradient-boosted trees, sigmoid calibration, thresholds.

        The adapter cosine of a training pair comes from an adapter trained without that pair's
        group (``groups`` / ``adapter_groups``: the same ids, e.g. a ministry or a vnPara pair), so
        the classifier learns how much to trust the adapter on texts it has not seen.
        ``sample_weight`` (e.g. each source weighing the same in all) weighs the trees, the
        calibration and the precision the thresholds are chosen for. ``duplicate`` says which pairs
        the thresholds are chosen on: 1 a duplicate (the same request sent again, a paraphrase), 0 two
        distinct requests (as intake meets them: a text and its nearest neighbours), -1 not used; by
        default the labels themselves.
        """
        from sklearn.model_selection import GroupKFold

        y_arr = np.asarray(y, dtype=np.int64)
        if len(pairs) != len(y_arr) or len(set(y_arr.tolist())) != 2:
            raise InvalidInput("fit needs one 0/1 label per pair, both classes present")
        ea, eb = (
            embeddings
            if embeddings is not None
            else (
                self._vectors([p[0] for p in pairs]),
                self._vectors([p[1] for p in pairs]),
            )
        )
        groups_arr = np.asarray(groups if groups is not None else np.arange(len(pairs)))
        w = np.ones(len(pairs)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        self.idf_ = char_idf(list(idf_texts) if idf_texts is not None else [t for p in pairs for t in p])
        if adapter_vectors is None or adapter_pairs is None:  # the pairs themselves: positives as (i, j)
            adapter_vectors = np.concatenate([ea, eb])
            pos = np.where(y_arr == 1)[0]
            adapter_pairs = np.stack([pos, pos + len(pairs)], axis=1)
            adapter_groups = groups_arr[pos]
            adapter_hard = None
        a_groups = np.asarray(adapter_groups if adapter_groups is not None else np.arange(len(adapter_pairs)))
        hard = None if adapter_hard is None else np.asarray(adapter_hard)

        def adapter_on(mask: np.ndarray) -> np.ndarray:
            return train_adapter(
                adapter_vectors,
                adapter_pairs[mask],
                hard=None if hard is None else hard[mask],
                rank=self.rank,
                epochs=self.epochs,
                seed=self.seed,
            )

        # Out-of-fold: each fold's pairs get the adapter cosine of an adapter that never saw their groups,
        # and a classifier score from a classifier that never saw them (for the sigmoid calibration).
        n_folds = min(self.folds, len(np.unique(groups_arr)))
        folds = list(GroupKFold(n_splits=n_folds).split(np.zeros(len(pairs)), y_arr, groups_arr))
        X = np.zeros((len(pairs), len(FEATURES)))
        for _, test in folds:
            held = set(groups_arr[test].tolist())
            keep = np.asarray([g not in held for g in a_groups.tolist()])
            sub = [pairs[i] for i in test]
            X[test] = self.features(sub, embeddings=(ea[test], eb[test]), adapter=adapter_on(keep), idf=self.idf_)
        self.train_features_, self.train_labels_, self.train_groups_ = X, y_arr, groups_arr
        oof = np.zeros(len(pairs))
        for train, test in folds:
            model = self._trees().fit(X[train], y_arr[train], sample_weight=w[train])
            oof[test] = Forest.from_sklearn(model).decision_function(X[test])
        self.adapter_ = adapter_on(np.ones(len(adapter_pairs), dtype=bool))
        self.forest_ = Forest.from_sklearn(self._trees().fit(X, y_arr, sample_weight=w))
        self.calibration_ = _platt(oof, y_arr, w)
        calibrated = _sigmoid(self.calibration_[0] * oof + self.calibration_[1])
        self.oof_proba_ = calibrated
        dup = y_arr if duplicate is None else np.asarray(duplicate, np.int64)
        used = dup >= 0
        self.threshold_ = threshold_for_precision(calibrated[used], dup[used], self.precision)
        self.campaign_threshold_ = threshold_for_precision(calibrated[used], dup[used], self.campaign_precision)
        self.thresholds_ = {
            str(level): round(threshold_for_precision(calibrated[used], dup[used], level), 6)
            for level in (0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
        }
        self.precision_ = self.precision
        self.classes_ = np.asarray([0, 1])
        self.model_id_ = model_id or (getattr(self.embedder, "model_id", "") if self.embedder else "")
        self.dimension_ = int(ea.shape[1])
        self.n_pairs_ = len(pairs)
        return self

    def _trees(self) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.trees,
            max_leaf_nodes=self.leaves,
            l2_regularization=1.0,
            monotonic_cst=list(MONOTONE),
            early_stopping=False,
            random_state=self.seed,
        )

    # ---- prediction --------------------------------------------------------------------------
    def _check(self) -> None:
        if not hasattr(self, "forest_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("SameMatterScorer is not fitted; call fit() or SameMatterScorer.load()")

    def decision_function(
        self, pairs: Sequence[tuple[str, str]], *, embeddings: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        self._check()
        return self.forest_.decision_function(self.features(pairs, embeddings=embeddings))

    def predict_proba(
        self, pairs: Sequence[tuple[str, str]], *, embeddings: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """(n, 2): P(another matter), P(same matter) per pair (columns follow ``classes_``)."""
        a, b = self.calibration_
        p = _sigmoid(a * self.decision_function(pairs, embeddings=embeddings) + b)
        return np.column_stack([1 - p, p])

    def predict(
        self, pairs: Sequence[tuple[str, str]], *, embeddings: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """1 where a pair is a likely duplicate (P(same matter) >= ``threshold_``)."""
        return (self.predict_proba(pairs, embeddings=embeddings)[:, 1] >= self.threshold_).astype(np.int64)

    def score_candidates(
        self, text: str, vector: np.ndarray, candidates: Sequence[tuple[str, np.ndarray]]
    ) -> np.ndarray:
        """P(same matter) of one text against each (text, vector) candidate (the pipeline's re-scoring)."""
        if not candidates:
            return np.zeros(0)
        pairs = [(text, c[0]) for c in candidates]
        eb = np.stack([np.asarray(c[1], np.float32) for c in candidates])
        ea = np.repeat(np.asarray(vector, np.float32)[None, :], len(candidates), axis=0)
        return np.asarray(self.predict_proba(pairs, embeddings=(ea, eb))[:, 1])

    # ---- persistence -------------------------------------------------------------------------
    def save(self, path: Path, *, info: dict[str, Any] | None = None) -> Path:
        """One compressed ``.npz`` of arrays (adapter and IDF as float16) and a JSON card."""
        self._check()
        card = {
            "format": FORMAT,
            "kind": "same_matter",
            "features": list(FEATURES),
            "threshold": self.threshold_,
            "campaign_threshold": self.campaign_threshold_,
            "precision": self.precision_,
            "campaign_precision": self.campaign_precision,
            "model_id": self.model_id_,
            "dimension": self.dimension_,
            "n_pairs": self.n_pairs_,
            "thresholds_by_precision": getattr(self, "thresholds_", {}),
            "params": {
                "rank": self.rank,
                "epochs": self.epochs,
                "trees": self.trees,
                "leaves": self.leaves,
                "learning_rate": self.learning_rate,
                "folds": self.folds,
                "seed": self.seed,
            },
            **(info or {}),
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {
            "adapter": self.adapter_.astype(np.float16),
            "idf": self.idf_.astype(np.float16),
            **self.forest_.arrays(),
            "calibration": np.asarray(self.calibration_),
            "card": np.frombuffer(json.dumps(card, ensure_ascii=False, sort_keys=True).encode(), dtype=np.uint8),
        }
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: Path | None = None, *, embedder: Embedder | None = None) -> SameMatterScorer:
        """A saved scorer (the packaged one when ``path`` is None); arrays only, nothing unpickled."""
        try:
            if path is None:
                blob = resources.files("triage").joinpath("data").joinpath(PACKAGED).read_bytes()
                import io

                data = np.load(io.BytesIO(blob), allow_pickle=False)
                where = f"triage/data/{PACKAGED}"
            else:
                data = np.load(Path(path), allow_pickle=False)
                where = str(path)
        except FileNotFoundError:
            raise ModelMissing(
                f"no same-matter scorer at {path or 'triage/data/' + PACKAGED}; "
                "build it with `python scripts/build_same_matter.py`"
            ) from None
        try:
            card = json.loads(bytes(data["card"]).decode())
            if card.get("format") != FORMAT or card.get("features") != list(FEATURES):
                raise ModelIncompatible(
                    f"the same-matter scorer at {where} has another layout (format {card.get('format')}); "
                    "rebuild it with `python scripts/build_same_matter.py`"
                )
            params = card.get("params", {})
            self = cls(
                embedder=embedder,
                rank=int(params.get("rank", 128)),
                epochs=int(params.get("epochs", 30)),
                trees=int(params.get("trees", 300)),
                leaves=int(params.get("leaves", 15)),
                learning_rate=float(params.get("learning_rate", 0.05)),
                precision=float(card["precision"]),
                campaign_precision=float(card["campaign_precision"]),
                folds=int(params.get("folds", 4)),
                seed=int(params.get("seed", 0)),
            )
            self.adapter_ = np.asarray(data["adapter"], np.float32)
            self.idf_ = np.asarray(data["idf"], np.float32)
            self.forest_ = Forest.from_arrays(data)
            self.calibration_ = (float(data["calibration"][0]), float(data["calibration"][1]))
        except KeyError as exc:
            raise ModelIncompatible(f"the same-matter scorer at {where} lacks {exc}; rebuild it") from None
        self.threshold_ = float(card["threshold"])
        self.campaign_threshold_ = float(card["campaign_threshold"])
        self.precision_ = float(card["precision"])
        self.model_id_ = str(card.get("model_id", ""))
        self.dimension_ = int(card["dimension"])
        self.n_pairs_ = int(card.get("n_pairs", 0))
        self.card_ = card
        self.classes_ = np.asarray([0, 1])
        if embedder is not None and int(embedder.dimension) != self.dimension_:
            raise ModelIncompatible(
                f"the same-matter scorer was trained on {self.dimension_}-d vectors ({self.model_id_}), "
                f"the encoder gives {embedder.dimension}-d; set TRIAGE_DUPLICATE_SCORER=cosine or rebuild it "
                "with `python scripts/build_same_matter.py`"
            )
        return self


@lru_cache(maxsize=4)
def _cached(path: str | None) -> SameMatterScorer:
    return SameMatterScorer.load(None if path is None else Path(path))


def load_same_matter(path: Path | None = None, *, embedder: Embedder | None = None) -> SameMatterScorer:
    """The scorer at ``path`` (the packaged one by default), loaded once per process."""
    scorer = _cached(None if path is None else str(path))
    if embedder is not None and int(embedder.dimension) != scorer.dimension_:
        raise ModelIncompatible(
            f"the same-matter scorer was trained on {scorer.dimension_}-d vectors ({scorer.model_id_}), "
            f"the encoder gives {embedder.dimension}-d; set TRIAGE_DUPLICATE_SCORER=cosine or rebuild it "
            "with `python scripts/build_same_matter.py`"
        )
    return scorer
