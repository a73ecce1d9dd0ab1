"""Cold-start routing by the national procedure catalogue: who handles the nearest procedures.

A citizen's question is compared with every central procedure of the catalogue (segmented-word
TF-IDF plus the e5 embedding) and with each field (lĩnh vực) as the centroid of its procedures;
the nearest procedures vote for their issuing ministry, weighted by a softmax of their similarity,
and the nearest fields add the share of each ministry among their procedures. No labels are used.
A complaint, denunciation or citizen-reception procedure (issued by a ministry for its own sector)
gives half its vote to the body that manages those fields state-wide (Thanh tra Chính phủ, by the
registry's ``oversees``), which issues no procedure itself; an emulation or award procedure gives
half to Bộ Nội vụ likewise. Abbreviations in the text are spelled out for the word match.
The best procedure per ministry is kept as the reason a clerk reads, and the unit under the
ministry that executes it (Cục Thuế, BHXH) as the suggested unit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer

from triage.errors import InvalidInput, NotFitted
from triage.nlp.agencies import AgencyRegistry, default_registry
from triage.nlp.catalogue import Catalogue, Procedure, default_catalogue
from triage.nlp.embed import Embedder, similarities
from triage.nlp.router import _word_analyzer
from triage.nlp.text import expand_abbreviations

__all__ = ["Evidence", "ProcedureRouter", "catalogue_encodings"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Evidence:
    """Why the catalogue suggests a ministry: its best-matching procedure and the unit executing it."""

    procedure: Procedure
    similarity: float

    @property
    def reason(self) -> str:
        return self.procedure.reason

    @property
    def unit(self) -> str | None:
        return self.procedure.units[0] if self.procedure.units else None


def catalogue_encodings(catalogue: Catalogue, embedder: Embedder, cache_dir: Path | None) -> np.ndarray:
    """The e5 passages of every procedure, cached per encoder and catalogue version.

    Encoding 5,669 procedures costs minutes on two cores; ``triage build-models`` does it once at
    set-up, so start-up only reads a file.
    """
    path = None
    if cache_dir is not None:
        name = f"{_SAFE.sub('_', embedder.model_id)}-{catalogue.fingerprint()}.npy"
        path = Path(cache_dir) / name
        if path.exists():
            cached = np.load(path)
            if cached.shape == (len(catalogue), embedder.dimension):
                return np.asarray(cached, dtype=np.float32)
    docs = [p.document() for p in catalogue.procedures]
    encoded = np.asarray(embedder.encode(docs, prompt_name="passage", batch_size=64), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, encoded)
        tmp.replace(path)
    return encoded


class ProcedureRouter(BaseEstimator):
    """Scores ministries (top-level central bodies) by the catalogue procedures nearest to a text."""

    def __init__(
        self,
        *,
        catalogue: Catalogue | None = None,
        registry: AgencyRegistry | None = None,
        embedder: Embedder | None = None,
        cache_dir: Path | None = None,
        word_weight: float = 0.6,
        neighbours: int = 40,
        temperature: float = 0.02,
        field_neighbours: int = 5,
        field_temperature: float = 0.02,
        field_weight: float = 0.3,
        size_exponent: float = 0.25,
        floor: float = 1e-3,
        oversight_share: float = 0.5,
    ) -> None:
        self.catalogue = catalogue
        self.registry = registry
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.word_weight = word_weight
        self.neighbours = neighbours
        self.temperature = temperature
        self.field_neighbours = field_neighbours
        self.field_temperature = field_temperature
        self.field_weight = field_weight
        self.size_exponent = size_exponent
        self.floor = floor
        self.oversight_share = oversight_share

    def fit(self, texts: Sequence[str] | None = None, labels: Sequence[str] | None = None) -> ProcedureRouter:
        """Index the central procedures; texts and labels are ignored (it needs no labels)."""
        registry = self.registry or default_registry()
        catalogue = self.catalogue or default_catalogue()
        self.registry_ = registry
        central = [i for i, p in enumerate(catalogue.procedures) if p.level == "central" and p.agency in registry]
        self.procedures_: list[Procedure] = [catalogue.procedures[i] for i in central]
        owners = [registry.root(p.agency).code for p in self.procedures_]
        overseers = [registry.overseer(p.fields) for p in self.procedures_]
        self.classes_ = np.asarray(sorted(set(owners) | {o for o in overseers if o}))
        col = {c: j for j, c in enumerate(self.classes_)}
        self.owner_ = np.asarray([col[o] for o in owners])
        # A complaint or denunciation procedure of a ministry is also a question for the body that manages
        # complaints state-wide (Thanh tra Chính phủ), which issues no procedure of its own.
        self.overseer_ = np.asarray([col[o] if o else -1 for o in overseers])
        n = len(self.classes_)
        size = np.bincount(self.owner_, minlength=n) + np.bincount(self.overseer_[self.overseer_ >= 0], minlength=n)
        self.size_ = np.maximum(size, 1).astype(float)
        docs = [p.document() for p in self.procedures_]
        self.words_ = TfidfVectorizer(analyzer=_word_analyzer, sublinear_tf=True, dtype=np.float32)
        self.doc_words_ = self.words_.fit_transform(docs).T.tocsr()
        self.doc_embeddings_: np.ndarray | None = None
        self.field_embeddings_: np.ndarray | None = None
        fields = sorted({f for p in self.procedures_ for f in p.fields})
        fcol = {f: k for k, f in enumerate(fields)}
        share = np.full((len(fields), len(self.classes_)), 0.01)
        for p, owner, overseer in zip(self.procedures_, self.owner_, self.overseer_, strict=True):
            cut = self.oversight_share if overseer >= 0 else 0.0
            for f in p.fields:
                share[fcol[f], owner] += 1.0 - cut
                if cut:
                    share[fcol[f], overseer] += cut
        self.field_share_ = share / share.sum(axis=1, keepdims=True)
        self.fields_ = fields
        if self.embedder is not None:
            every = catalogue_encodings(catalogue, self.embedder, self.cache_dir)
            self.doc_embeddings_ = every[central]
            centroids = np.zeros((len(fields), every.shape[1]), dtype=np.float32)
            for p, vec in zip(self.procedures_, self.doc_embeddings_, strict=True):
                for f in p.fields:
                    centroids[fcol[f]] += vec
            norms = np.linalg.norm(centroids, axis=1, keepdims=True)
            self.field_embeddings_ = centroids / np.maximum(norms, 1e-9)
        return self

    def _check(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFitted("ProcedureRouter is not fitted: call fit()")

    def similarity(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Text x procedure similarity (n_texts, n_procedures)."""
        self._check()
        if isinstance(texts, str):
            raise InvalidInput("pass a list of texts, not a single string")
        items = list(texts)
        spelled = [expand_abbreviations(t) for t in items]
        score = np.asarray((self.words_.transform(spelled) @ self.doc_words_).toarray(), dtype=np.float32)
        score *= self.word_weight
        if self.doc_embeddings_ is not None:
            if embeddings is None:
                if self.embedder is None:
                    raise InvalidInput("this catalogue index holds encodings: pass the texts' embeddings")
                embeddings = self.embedder.encode(items)
            score += similarities(embeddings, self.doc_embeddings_)
        return score

    def _scores(self, texts: Sequence[str], embeddings: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        items = list(texts)
        if embeddings is None and self.doc_embeddings_ is not None and items:
            if self.embedder is None:
                raise InvalidInput("this catalogue index holds encodings: pass the texts' embeddings")
            embeddings = self.embedder.encode(items)
        sim = self.similarity(items, embeddings)
        n, m = sim.shape
        k = min(self.neighbours, m)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top_sim = np.take_along_axis(sim, top, axis=1)
        weight = np.exp((top_sim - top_sim.max(axis=1, keepdims=True)) / self.temperature)
        votes = np.zeros((n, len(self.classes_)))
        rows = np.repeat(np.arange(n), k)
        share = np.where(self.overseer_[top] >= 0, self.oversight_share, 0.0)
        np.add.at(votes, (rows, self.owner_[top].ravel()), (weight * (1 - share)).ravel())
        overseen = share > 0
        np.add.at(votes, (rows[overseen.ravel()], self.overseer_[top][overseen]), (weight * share)[overseen])
        if self.size_exponent:
            # A ministry with many procedures wins more neighbours by count alone; discount its size.
            votes /= self.size_**self.size_exponent
        proba = votes / votes.sum(axis=1, keepdims=True)
        if self.field_embeddings_ is not None and embeddings is not None and self.field_weight > 0:
            fsim = similarities(embeddings, self.field_embeddings_)
            kf = min(self.field_neighbours, fsim.shape[1])
            ftop = np.argpartition(-fsim, kf - 1, axis=1)[:, :kf]
            fs = np.take_along_axis(fsim, ftop, axis=1)
            fw = np.exp((fs - fs.max(axis=1, keepdims=True)) / self.field_temperature)
            fw /= fw.sum(axis=1, keepdims=True)
            by_field = np.einsum("nk,nkc->nc", fw, self.field_share_[ftop])
            w = self.field_weight
            logp = (1 - w) * np.log(proba + self.floor) + w * np.log(by_field + self.floor)
            proba = np.exp(logp - logp.max(axis=1, keepdims=True))
        proba = proba + self.floor
        return proba / proba.sum(axis=1, keepdims=True), top, top_sim

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        self._check()
        if not list(texts):
            return np.zeros((0, len(self.classes_)))
        return self._scores(texts, embeddings)[0]

    def predict_with_evidence(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[dict[str, Evidence]]]:
        """Probabilities and, per text, the best procedure for each ministry among the neighbours."""
        self._check()
        if not list(texts):
            return np.zeros((0, len(self.classes_))), []
        proba, top, top_sim = self._scores(texts, embeddings)
        evidence: list[dict[str, Evidence]] = []
        for i in range(len(top)):
            best: dict[str, Evidence] = {}
            for j in np.argsort(-top_sim[i]):
                p = int(top[i, j])
                owner = str(self.classes_[self.owner_[p]])
                if owner not in best:
                    best[owner] = Evidence(self.procedures_[p], float(top_sim[i, j]))
            evidence.append(best)
        return proba, evidence
