"""Programme fields: a second, zero-shot suggestion beside the agency (Resolution 57-NQ/TW by default).

PAKN-SKGP exists for science, technology, innovation and digital transformation. Its task groups
(institutions and policy, investment and infrastructure, human resources and talent, digital
transformation in the state, science and innovation in enterprises, international cooperation) are
a data file, ``triage/data/programme_fields.json``; ``TRIAGE_PROGRAMME_FIELDS_PATH`` swaps in another
programme's taxonomy. One entry is the catch-all ("other", *Khác*): chosen when nothing fits.

The classifier needs no labels. Each field's description is cut into sentences; a text's score for
a field is its best e5 cosine to those sentences (and to the whole description) plus a little
character TF-IDF similarity to the description. The catch-all's score is the larger of its own
description's (everyday matters: land, residence, military service, ...) plus a margin, and a fixed
``threshold``: a text whose best field scores below the threshold, or that is not clearly closer to
S&T than to everyday matters, goes to "other". A softmax
with a temperature turns the scores into the ranked list the clerk sees. It reuses the embedding
the pipeline already computed: per submission it costs one TF-IDF transform and a small dot product.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from triage.errors import InvalidInput, NotFitted, NotFound
from triage.nlp.embed import Embedder
from triage.nlp.router import Prediction, softmax, top_k

PACKAGED = "programme_fields.json"
CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_ENTRY_KEYS = {"code", "name", "description"}
_TOP_KEYS = {"programme", "version", "about", "other", "fields"}
_SENTENCE_END = re.compile(r"(?<=[.;!?])\s+")


@dataclass(frozen=True)
class ProgrammeField:
    """One task group of the programme: a stable code, the name a clerk reads, a zero-shot description."""

    code: str
    name: str
    description: str

    def sentences(self) -> list[str]:
        """The description's sentences (each is compared with a text on its own)."""
        return [s.strip() for s in _SENTENCE_END.split(self.description) if len(s.strip()) > 3]


@dataclass(frozen=True)
class ProgrammeTaxonomy:
    """The fields of one programme, in display order; ``other`` is the catch-all's code."""

    programme: str
    fields: tuple[ProgrammeField, ...]
    other: str
    version: str = ""
    source: str = "packaged"

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.fields)

    def get(self, code: str) -> ProgrammeField:
        for f in self.fields:
            if f.code == code:
                return f
        raise NotFound(f"no programme field {code!r}; known: {', '.join(self.codes)}")

    def name_of(self, code: str | None, default: str | None = None) -> str | None:
        """The field's name, or ``default`` for None or a code this taxonomy does not know (an older one's)."""
        if code is None:
            return default
        try:
            return self.get(code).name
        except NotFound:
            return default if default is not None else code

    def check(self, code: str) -> str:
        """``code`` if it is one of this taxonomy's, else InvalidInput naming the allowed codes (filters)."""
        value = code.strip()
        if value not in self.codes:
            raise InvalidInput(f"programme_field: unknown code {code[:40]!r}; choose one of {', '.join(self.codes)}")
        return value

    @classmethod
    def from_dict(cls, raw: Any, source: str = "packaged") -> ProgrammeTaxonomy:
        """Validate a parsed file: every problem is an InvalidInput that names the file and the entry."""

        def bad(msg: str) -> InvalidInput:
            return InvalidInput(f"programme fields file {source}: {msg}")

        if not isinstance(raw, dict):
            raise bad("the top level must be a JSON object with 'fields' and 'other'")
        unknown = set(raw) - _TOP_KEYS
        if unknown:
            raise bad(f"unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
        entries = raw.get("fields")
        if not isinstance(entries, list) or len(entries) < 2:
            raise bad("'fields' must be a list of at least two entries (the fields and the catch-all)")
        fields: list[ProgrammeField] = []
        for i, entry in enumerate(entries):
            where = f"fields[{i}]"
            if not isinstance(entry, dict):
                raise bad(f"{where} must be an object with code, name and description")
            extra, missing = set(entry) - _ENTRY_KEYS, _ENTRY_KEYS - set(entry)
            if extra or missing:
                raise bad(f"{where} needs exactly the keys code, name, description (missing {sorted(missing)}, "
                          f"unknown {sorted(extra)})")  # fmt: skip
            code, name, description = entry["code"], entry["name"], entry["description"]
            if not isinstance(code, str) or not CODE_PATTERN.match(code):
                raise bad(f"{where}.code {code!r} must be 1-32 characters of a-z, 0-9, '_' or '-'")
            if not isinstance(name, str) or not name.strip() or len(name) > 200:
                raise bad(f"{where}.name must be a non-empty string of at most 200 characters")
            if not isinstance(description, str) or len(description.strip()) < 10:
                raise bad(f"{where}.description must be a text of a few sentences (zero-shot classification reads it)")
            if any(f.code == code for f in fields):
                raise bad(f"{where}.code {code!r} is used twice")
            fields.append(ProgrammeField(code, name.strip(), " ".join(description.split())))
        other = raw.get("other")
        if not isinstance(other, str) or other not in {f.code for f in fields}:
            codes = [f.code for f in fields]
            raise bad(f"'other' must name the catch-all entry's code (one of {codes}), got {other!r}")
        programme = raw.get("programme", "")
        if not isinstance(programme, str):
            raise bad("'programme' must be a string")
        return cls(programme=programme, fields=tuple(fields), other=other, version=str(raw.get("version", "")),
                   source=source)  # fmt: skip

    @classmethod
    def load(cls, path: Path | None = None) -> ProgrammeTaxonomy:
        """Read and validate a taxonomy file; without a path, the Resolution-57 one shipped in the package."""
        if path is None:
            text = resources.files("triage").joinpath("data").joinpath(PACKAGED).read_text(encoding="utf-8")
            source = f"triage/data/{PACKAGED}"
        else:
            source = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidInput(f"programme fields file {source}: cannot read it ({exc.strerror or exc})") from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"programme fields file {source}: not valid JSON ({exc})") from None
        return cls.from_dict(raw, source)


_DEFAULT: dict[str, ProgrammeTaxonomy] = {}


def default_taxonomy() -> ProgrammeTaxonomy:
    """The packaged Resolution-57 taxonomy (read once)."""
    if "packaged" not in _DEFAULT:
        _DEFAULT["packaged"] = ProgrammeTaxonomy.load()
    return _DEFAULT["packaged"]


class ProgrammeFieldClassifier(BaseEstimator):
    """Zero-shot programme field of a text; ``classes_`` are the taxonomy's codes, the catch-all included.

    Scores are e5 cosine + ``lexical_weight`` x TF-IDF cosine. The catch-all scores
    ``max(own + other_margin, threshold)``: a text whose best field scores below ``threshold``, or
    less than ``other_margin`` above the everyday-matters description, goes to it. The defaults were
    chosen on the public-service FAQ's train split (nothing about S&T outside the Ministry of Science
    and Technology's questions) and a small hand-written dev sample, never on the test sample
    (``benchmarks/programme_fields.py``; figures in ``benchmarks/results/programme_fields.json``).
    """

    def __init__(
        self,
        *,
        taxonomy: ProgrammeTaxonomy | None = None,
        embedder: Embedder | None = None,
        embedding_weight: float = 1.0,
        lexical_weight: float = 0.3,
        other_margin: float = 0.025,
        threshold: float = 0.93,
        temperature: float = 0.01,
    ) -> None:
        self.taxonomy = taxonomy
        self.embedder = embedder
        self.embedding_weight = embedding_weight
        self.lexical_weight = lexical_weight
        self.other_margin = other_margin
        self.threshold = threshold
        self.temperature = temperature

    def fit(self, texts: Sequence[str] | None = None, labels: Sequence[Any] | None = None) -> ProgrammeFieldClassifier:
        """Index the descriptions; texts and labels are ignored (it is zero-shot)."""
        taxonomy = self.taxonomy or default_taxonomy()
        self.taxonomy_ = taxonomy
        self.classes_ = np.asarray(taxonomy.codes)
        self.other_index_ = taxonomy.codes.index(taxonomy.other)
        docs = [f"{f.name}. {f.description}" for f in taxonomy.fields]
        self.lexical_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
        self.doc_lexical_ = self.lexical_.fit_transform(docs)
        pieces: list[str] = []
        owner: list[int] = []
        for j, f in enumerate(taxonomy.fields):
            for piece in [docs[j], *f.sentences()]:
                pieces.append(piece)
                owner.append(j)
        self.piece_owner_ = np.asarray(owner)
        self.piece_starts_ = np.searchsorted(self.piece_owner_, np.arange(len(self.classes_)))
        self.piece_embeddings_ = (
            self.embedder.encode(pieces, prompt_name="passage") if self.embedder is not None else None
        )
        return self

    def _check(self) -> None:
        try:
            check_is_fitted(self, "classes_")
        except Exception as exc:
            raise NotFitted("ProgrammeFieldClassifier is not fitted: call fit()") from exc

    def similarity(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Raw combined score (n_texts, n_classes) before the catch-all's floor and the softmax."""
        self._check()
        if isinstance(texts, str):
            raise InvalidInput("pass a list of texts, not a single string")
        items = list(texts)
        score = self.lexical_weight * (self.lexical_.transform(items) @ self.doc_lexical_.T).toarray()
        if self.piece_embeddings_ is not None and self.embedding_weight > 0:
            emb = embeddings if embeddings is not None else self.embedder.encode(items)  # type: ignore[union-attr]
            sims = np.asarray(emb, dtype=np.float32) @ self.piece_embeddings_.T  # (n, pieces)
            # Pieces are grouped by field in class order: one reduceat gives each field's best piece.
            score += self.embedding_weight * np.maximum.reduceat(sims, self.piece_starts_, axis=1)
        return score

    def decision_function(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Scores with the catch-all's margin and floor applied: what the softmax turns into probabilities."""
        score = self.similarity(texts, embeddings)
        o = self.other_index_
        score[:, o] = np.maximum(score[:, o] + self.other_margin, self.threshold)
        return score

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        if not list(texts):
            self._check()
            return np.zeros((0, len(self.classes_)))
        return softmax(self.decision_function(texts, embeddings) / self.temperature)

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        proba = self.predict_proba(texts, embeddings)
        return self.classes_[proba.argmax(axis=1)] if len(proba) else np.asarray([], dtype=self.classes_.dtype)

    def predict_top_k(
        self, texts: Sequence[str], k: int = 3, embeddings: np.ndarray | None = None
    ) -> list[list[Prediction]]:
        """Ranked codes with probabilities (labels are codes; ``taxonomy_.name_of`` gives the names)."""
        return top_k(self.predict_proba(texts, embeddings), self.classes_, k)


def load_programme_fields(*, embedder: Embedder | None, path: Path | None = None) -> ProgrammeFieldClassifier:
    """The service's classifier over the configured taxonomy (the packaged Resolution-57 one by default)."""
    taxonomy = ProgrammeTaxonomy.load(path) if path is not None else default_taxonomy()
    return ProgrammeFieldClassifier(taxonomy=taxonomy, embedder=embedder).fit()
