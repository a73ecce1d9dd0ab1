"""From a submission to a Suggestion a clerk can confirm in one click.

Stages, each replaceable: text already normalised at intake (never again here) -> ``mask_pii`` (the
models and analysts see the masked copy only) -> one embedding -> agency top-3 (``AgencyRouter``:
cold start with zero labels, mixed with a supervised router once trained) -> field -> kind ->
locality -> similar earlier cases -> deadlines -> moderation flags (abuse / spam, for a clerk's review;
``moderation`` is None when no moderator is loaded, and nothing is ever hidden automatically).

*Field*: until reviewed labels train a field router (``TRIAGE_FIELD_ROUTER_PATH``), the top agency's
own fields of state management (from the registry) are ranked by embedding similarity to the text:
a real zero-label suggestion, honest about being uncalibrated (``field_source = "similarity"``).
*Programme field*: a second suggestion beside the agency, the programme's task group (Resolution
57-NQ/TW by default, ``triage.nlp.programme_fields``): zero-shot from the same embedding, "other"
when the text is about none of them.
*Kind*: the submitter's own choice is kept (``kind_source = "submitted"``); a kind classifier needs
reviewed labels first, which the route confirmations are now collecting.
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from triage.cases.workflow import DeadlinePolicy, forward_deadline, response_deadline, validate_kind
from triage.config import Settings, get_settings
from triage.nlp.agencies import AgencyRegistry, default_registry
from triage.nlp.agency_router import AgencyRouter, load_agency_router
from triage.nlp.embed import Embedder, load_embedder
from triage.nlp.moderation import ModerationResult, Moderator, load_moderator
from triage.nlp.programme_fields import (
    ProgrammeFieldClassifier,
    ProgrammeTaxonomy,
    default_taxonomy,
    load_programme_fields,
)
from triage.nlp.router import Router
from triage.nlp.same_matter import SameMatterScorer, load_same_matter
from triage.nlp.text import mask_personal, mask_pii

if TYPE_CHECKING:
    from triage.cases.calendar import WorkingCalendar

log = logging.getLogger(__name__)

FIELD_TEMPERATURE = 0.02
CAMPAIGN_DEPTH = 20  # extra neighbours searched for campaign candidates
Known = dict[int, tuple[str, np.ndarray]]  # case id -> (masked text, stored vector), as the index gives them


class SimilarIndex(Protocol):
    """Earlier cases by cosine similarity (``triage.store.case_index.CaseIndex``: faiss).

    ``candidates`` gives each found case's masked text and stored vector, for the same-matter
    scorer to re-score the cosine's nearest cases.
    """

    def search(self, vector: np.ndarray, k: int, *, exclude_case: int | None = None) -> list[tuple[int, float]]: ...

    def candidates(self, case_ids: list[int]) -> Known: ...


@dataclass(frozen=True)
class SubmissionText:
    """What the pipeline reads: texts already through ``text.normalize``."""

    title: str
    content: str
    kind: str
    received_at: datetime
    province_code: str | None = None

    @property
    def text(self) -> str:
        return f"{self.title}. {self.content}" if self.title else self.content


@dataclass(frozen=True)
class Ranked:
    """One candidate with a score in [0, 1]; ``code`` is empty for fields.

    For an agency, ``unit``/``unit_name`` name the body under it that handles the matter (Cục Thuế
    under Bộ Tài chính) and ``reason`` the catalogue procedure behind the suggestion.
    """

    name: str
    score: float
    code: str = ""
    unit: str = ""
    unit_name: str = ""
    reason: str = ""


@dataclass(frozen=True)
class CampaignPolicy:
    """When two cases are the same campaign: near-identical and received close together.

    Here, not in campaigns.py, because the pipeline applies its threshold to flag near-identical cases.
    """

    threshold: float = 0.96
    window_days: float = 7.0
    min_size: int = 3
    min_links: int = 2  # members of an existing group a case must be near-identical to, to join or unite it


_WORD = re.compile(r"\w+")


def _words(text: str) -> tuple[str, ...]:
    """A text's words, lower case: what two copies of one petition share whatever their spacing and punctuation."""
    return tuple(_WORD.findall(text.lower()))


def _nearly(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Word sequences that differ in a few words only (a signature), worth comparing with names masked."""
    if abs(len(a) - len(b)) > 8:
        return False
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.85


@dataclass(frozen=True)
class SimilarCase:
    """An earlier case, its cosine (``score``) and, with the same-matter scorer, P(same matter).

    ``likely_duplicate`` when ``match`` (the probability, or the cosine in cosine mode) clears the threshold.
    """

    case_id: int
    score: float
    likely_duplicate: bool = False
    probability: float | None = None

    @property
    def match(self) -> float:
        """What thresholds apply to: P(same matter) when scored, else the cosine."""
        return self.score if self.probability is None else self.probability


@dataclass
class Suggestion:
    """Everything the clerk sees next to a new case; ``model_version`` says which models made it."""

    agencies: list[Ranked]
    fields: list[Ranked]
    field_source: str
    kind: str
    kind_source: str
    provinces: list[Ranked]
    similar: list[SimilarCase]
    forward_due: date
    answer_due: date
    model_version: str
    masked_text: str
    embedding: np.ndarray | None = field(default=None, repr=False)
    auto_threshold: float | None = None  # the models' precision-targeted threshold; None = never auto-route
    moderation: ModerationResult | None = None  # None = not screened (no moderator, or it failed)
    duplicate_threshold: float | None = (
        None  # ``match`` (probability, or cosine) from which a case is a likely duplicate
    )
    duplicate_scorer: str = "cosine"  # "same_matter" (calibrated probability) or "cosine"
    # Near-identical earlier cases (campaign candidates) from a deeper search than ``similar``; not stored.
    near_identical: list[SimilarCase] = field(default_factory=list, repr=False)
    # The programme's task groups (Resolution 57 by default), top-3 by probability; code + name each.
    programme_fields: list[Ranked] = field(default_factory=list)

    @property
    def likely_duplicate(self) -> bool:
        """True when some earlier case is similar enough to be the same matter (a clerk confirms)."""
        return any(c.likely_duplicate for c in self.similar)

    @property
    def auto_routable(self) -> bool:
        """True when the top agency's score clears the threshold chosen for the target precision."""
        return self.auto_threshold is not None and bool(self.agencies) and self.agencies[0].score >= self.auto_threshold

    @property
    def top_agency(self) -> str | None:
        return self.agencies[0].code if self.agencies else None

    @property
    def top_field(self) -> str | None:
        return self.fields[0].name if self.fields else None

    @property
    def top_programme_field(self) -> str | None:
        """The code of the most likely programme field (the catch-all's code when none fits)."""
        return self.programme_fields[0].code if self.programme_fields else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form stored with the case (without the embedding, which has its own column)."""
        data = asdict(self)
        data.pop("embedding")
        data.pop("near_identical")
        data["moderation"] = None if self.moderation is None else self.moderation.to_dict()
        data["likely_duplicate"] = self.likely_duplicate
        data["forward_due"] = self.forward_due.isoformat()
        data["answer_due"] = self.answer_due.isoformat()
        return data


@dataclass(frozen=True)
class RoutingModels:
    """The swappable part of the pipeline, replaced as one object so a request never mixes two versions."""

    agency_router: AgencyRouter
    field_router: Router | None = None
    label: str | None = None  # the registry version, e.g. "pakn-agency-router/v3"
    auto_threshold: float | None = None


class Pipeline:
    """The composed triage stages; build once per process (models load in seconds), call per submission.

    The routing models can be replaced while the service runs (``swap_models``): each call reads
    them once at its start, so in-flight requests finish on the models they began with.
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        agency_router: AgencyRouter,
        field_router: Router | None = None,
        registry: AgencyRegistry | None = None,
        similar: SimilarIndex | None = None,
        policy: DeadlinePolicy | None = None,
        calendar: WorkingCalendar | None = None,
        top_k: int = 3,
        similar_k: int = 5,
        moderator: Moderator | None = None,
        duplicate_threshold: float | None = None,
        campaigns: CampaignPolicy | None = None,
        programme_fields: ProgrammeFieldClassifier | None = None,
        same_matter: SameMatterScorer | None = None,
    ) -> None:
        self.embedder = embedder
        # None: similar cases are judged by cosine; else P(same matter) re-scores the index's candidates.
        self.same_matter = same_matter
        self.moderator = moderator
        self.models = RoutingModels(agency_router=agency_router, field_router=field_router)
        self.registry = registry or default_registry()
        self.similar = similar
        self.policy = policy or DeadlinePolicy()
        self.calendar = calendar
        self.top_k = top_k
        self.similar_k = similar_k
        self.duplicate_threshold = duplicate_threshold
        self.campaigns = campaigns  # None: intake groups no campaigns
        # None: the packaged Resolution-57 taxonomy, fitted on first use (it encodes its descriptions once).
        self._programme = programme_fields
        self._field_vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, embedder: Embedder | None = None, similar: SimilarIndex | None = None
    ) -> Pipeline:
        """The configured models: encoder, agency router (cold start + optional supervised), field router."""
        emb = embedder or load_embedder(
            settings.encoder_path,
            settings.model_dir,
            backend=settings.encoder_backend,
            threads=settings.encoder_threads,
        )
        router = load_agency_router(
            embedder=emb, router_path=settings.router_path, cold_start_weight=settings.cold_start_weight
        )
        field_router = Router.load(settings.field_router_path, embedder=emb) if settings.field_router_path else None
        scorer: SameMatterScorer | None = None
        duplicate_threshold, campaign_threshold = settings.duplicate_threshold, settings.campaign_threshold
        if settings.duplicate_scorer == "same_matter":
            scorer = load_same_matter(settings.same_matter_path, embedder=emb)
            duplicate_threshold = (
                scorer.threshold_ if settings.same_matter_threshold is None else settings.same_matter_threshold
            )
            campaign_threshold = (
                scorer.campaign_threshold_
                if settings.same_matter_campaign_threshold is None
                else settings.same_matter_campaign_threshold
            )
        return cls(
            embedder=emb,
            agency_router=router,
            field_router=field_router,
            similar=similar,
            policy=DeadlinePolicy.from_settings(settings),
            similar_k=settings.similar_top_k,
            moderator=load_moderator(settings, embedder=emb),
            duplicate_threshold=duplicate_threshold,
            same_matter=scorer,
            campaigns=CampaignPolicy(
                threshold=campaign_threshold,
                window_days=settings.campaign_window_days,
                min_size=settings.campaign_min_size,
            ),
            programme_fields=load_programme_fields(embedder=emb, path=settings.programme_fields_path),
        )

    @property
    def agency_router(self) -> AgencyRouter:
        return self.models.agency_router

    @property
    def field_router(self) -> Router | None:
        return self.models.field_router

    def swap_models(
        self,
        agency_router: AgencyRouter,
        field_router: Router | None = None,
        *,
        label: str | None = None,
        auto_threshold: float | None = None,
    ) -> None:
        """Replace the routing models atomically (one reference assignment); the field vectors stay valid."""
        self.models = RoutingModels(agency_router, field_router, label, auto_threshold)

    @property
    def model_version(self) -> str:
        """encoder | agency router | field ranker: enough to reproduce or audit a suggestion."""
        return self.version_of(self.models)

    def version_of(self, models: RoutingModels) -> str:
        """The version string of one set of models (registry version first when they came from the registry)."""
        sup = getattr(models.agency_router, "supervised_", None)
        agency = "cold-start" if sup is None else f"router-{sup.data_hash_[:12]}"
        if models.label:
            agency = f"{models.label}+{agency}"
        fr = models.field_router
        fields = "similarity" if fr is None else f"router-{fr.data_hash_[:12]}"
        return f"{self.embedder.model_id}|agency:{agency}|field:{fields}"

    def _fields_of(self, code: str) -> tuple[list[str], np.ndarray]:
        names = list(self.registry.get(code).fields)
        with self._lock:
            vecs = self._field_vectors.get(code)
        if vecs is None:
            vecs = self.embedder.encode(names, prompt_name="passage") if names else np.zeros((0, 1), np.float32)
            with self._lock:
                self._field_vectors[code] = vecs
        return names, vecs

    def rank_fields(
        self,
        text: str,
        embedding: np.ndarray,
        agency_code: str | None,
        k: int = 3,
        models: RoutingModels | None = None,
    ) -> list[Ranked]:
        """Trained field router when configured, else the agency's fields ranked by similarity."""
        field_router = (models or self.models).field_router
        if field_router is not None:
            preds = field_router.predict_top_k([text], k=k, embeddings=embedding[None, :])[0]
            return [Ranked(name=p.label, score=round(float(p.score), 6)) for p in preds]
        if agency_code is None:
            return []
        names, vecs = self._fields_of(agency_code)
        if not names:
            return []
        sims = vecs @ embedding
        z = (sims - sims.max()) / FIELD_TEMPERATURE
        proba = np.exp(z) / np.exp(z).sum()
        order = np.argsort(-proba)[:k]
        return [Ranked(name=names[i], score=round(float(proba[i]), 6)) for i in order]

    @property
    def programme_fields(self) -> ProgrammeFieldClassifier:
        """The programme field classifier (fitted; the default one is built on first use)."""
        clf = self._programme
        if clf is None or not hasattr(clf, "classes_"):
            with self._lock:
                if self._programme is None:
                    self._programme = ProgrammeFieldClassifier(embedder=self.embedder)
                if not hasattr(self._programme, "classes_"):
                    self._programme.fit()
                clf = self._programme
        return clf

    @property
    def programme_taxonomy(self) -> ProgrammeTaxonomy:
        """The taxonomy the suggestions use (what filters and reports validate codes against)."""
        clf = self._programme
        if clf is None:
            return default_taxonomy()
        fitted: ProgrammeTaxonomy | None = getattr(clf, "taxonomy_", None)
        return fitted or clf.taxonomy or default_taxonomy()

    def rank_programme_fields(self, text: str, embedding: np.ndarray, k: int = 3) -> list[Ranked]:
        """The programme's task groups for one text, most likely first (the same embedding, no new encode)."""
        clf = self.programme_fields
        names = clf.taxonomy_
        preds = clf.predict_top_k([text], k=k, embeddings=embedding[None, :])[0]
        return [Ranked(name=names.get(p.label).name, score=round(float(p.score), 6), code=p.label) for p in preds]

    def moderate(self, masked: str, embedding: np.ndarray) -> ModerationResult | None:
        """Abuse / spam screening of one text; None when no moderator is loaded or it failed (logged)."""
        moderator = self.moderator
        if moderator is None:
            return None
        try:
            return moderator.moderate([masked], embeddings=embedding[None, :])[0]
        except Exception:  # a flag is an aid: its failure must not stop the routing suggestion
            log.exception("moderation failed; the case is suggested without a moderation flag")
            return None

    def judge(
        self, text: str, embedding: np.ndarray, hits: list[tuple[int, float]], known: Known | None = None
    ) -> list[SimilarCase]:
        """The index's nearest cases judged: P(same matter) re-scores and re-ranks them (cosine mode: as found).

        A candidate whose text the index cannot give (removed meanwhile) keeps its cosine but is never
        a likely duplicate in same-matter mode. ``known`` is the candidates' texts when the caller has
        already fetched them (intake fetches once for judging and campaign grouping).
        """
        limit = self.duplicate_threshold
        scorer, index = self.same_matter, self.similar
        if scorer is None or index is None or not hits:
            return [
                SimilarCase(case_id=c, score=round(float(s), 6), likely_duplicate=limit is not None and s >= limit)
                for c, s in hits
            ]
        if known is None:
            known = index.candidates([c for c, _ in hits])
        scored = [(c, s) for c, s in hits if c in known]
        proba = scorer.score_candidates(text, embedding, [known[c] for c, _ in scored])
        out = [
            SimilarCase(
                case_id=c,
                score=round(float(s), 6),
                likely_duplicate=limit is not None and float(p) >= limit,
                probability=round(float(p), 6),
            )
            for (c, s), p in zip(scored, proba, strict=True)
        ]
        out.sort(key=lambda x: (-x.match, -x.score))
        return out + [SimilarCase(case_id=c, score=round(float(s), 6)) for c, s in hits if c not in known]

    def campaign_mates(
        self, text: str, found: list[SimilarCase], threshold: float, known: Known | None = None
    ) -> list[SimilarCase]:
        """The judged cases near-identical enough to share a campaign with ``text``.

        In same-matter mode a different signer counts as a difference: copies of one petition signed by
        different people score under the campaign cut (0.989-0.996 against 0.9997; even an identical pair
        can fall under it). So a case whose words equal this text's once names and street addresses are
        masked on both sides (``mask_personal``; case, spacing and punctuation ignored) is a copy of the
        same petition and joins as well. A cheap word-level comparison picks the few candidates worth
        the tagger.
        """
        near = [c for c in found if c.match >= threshold]
        index = self.similar
        rest = [c for c in found if c.match < threshold]
        if self.same_matter is None or index is None or not rest:
            return near
        if known is None:
            known = index.candidates([c.case_id for c in rest])
        mine = _words(text)
        close = [c for c in rest if c.case_id in known and _nearly(mine, _words(known[c.case_id][0]))]
        if not close:
            return near
        anonymous = _words(mask_personal(text))
        copies = [
            replace(c, likely_duplicate=True, probability=1.0)
            for c in close
            if _words(mask_personal(known[c.case_id][0])) == anonymous
        ]
        return near + copies

    def triage(self, submission: SubmissionText, *, exclude_case: int | None = None) -> Suggestion:
        """Suggest agencies, field, kind, locality, similar cases and deadlines for one submission."""
        kind = validate_kind(submission.kind)
        models = self.models  # read once: a concurrent swap_models does not affect this call
        masked = mask_pii(submission.text)
        embedding = self.embedder.encode([masked])[0]
        routing = models.agency_router.route([masked], k=self.top_k, embeddings=embedding[None, :])[0]
        ranked, locality = routing.agencies, routing.locality
        agencies = [
            Ranked(
                name=self.registry.get(p.code).name,
                score=round(float(p.score), 6),
                code=p.code,
                unit=p.unit or "",
                unit_name=self.registry.name_of(p.unit, ""),
                reason=p.reason or "",
            )
            for p in ranked
        ]
        top = agencies[0].code if agencies else None
        fields = self.rank_fields(masked, embedding, top, models=models)
        named = locality.provinces if locality.local else self.registry.find_provinces(masked)
        if submission.province_code and submission.province_code not in {p.code for p in named}:
            named = [self.registry.get(submission.province_code), *named]
        provinces = [Ranked(name=p.name, score=1.0, code=p.code) for p in named]
        similar: list[SimilarCase] = []
        near: list[SimilarCase] = []
        if self.similar is not None and self.similar_k > 0:
            # Campaign grouping looks deeper than the list shown: older copies outside the time window
            # must not crowd this week's out of the candidates.
            depth = self.similar_k + (CAMPAIGN_DEPTH if self.campaigns is not None else 0)
            hits = self.similar.search(embedding, depth, exclude_case=exclude_case)
            known = self.similar.candidates([c for c, _ in hits]) if self.same_matter is not None else None
            found = self.judge(masked, embedding, hits, known)
            similar = found[: self.similar_k]
            if self.campaigns is not None:
                near = self.campaign_mates(masked, found, self.campaigns.threshold, known)
                copies = {c.case_id for c in near if c.likely_duplicate}
                similar = [replace(c, likely_duplicate=True) if c.case_id in copies else c for c in similar]
        return Suggestion(
            agencies=agencies,
            fields=fields,
            field_source="similarity" if models.field_router is None else "router",
            kind=kind,
            kind_source="submitted",
            provinces=provinces,
            similar=similar,
            forward_due=forward_deadline(submission.received_at, self.policy, self.calendar),
            answer_due=response_deadline(submission.received_at, kind, self.policy, self.calendar),
            model_version=self.version_of(models),
            masked_text=masked,
            embedding=embedding.astype(np.float32),
            auto_threshold=models.auto_threshold,
            moderation=self.moderate(masked, embedding),
            duplicate_threshold=self.duplicate_threshold,
            duplicate_scorer="cosine" if self.same_matter is None else "same_matter",
            near_identical=near,
            programme_fields=self.rank_programme_fields(masked, embedding),
        )


_DEFAULT: dict[str, Pipeline] = {}
_DEFAULT_LOCK = threading.Lock()


def triage(submission: SubmissionText, pipeline: Pipeline | None = None) -> Suggestion:
    """``Pipeline.triage`` with the environment's models (built on first call, then reused)."""
    if pipeline is None:
        with _DEFAULT_LOCK:
            if "default" not in _DEFAULT:
                _DEFAULT["default"] = Pipeline.from_settings(get_settings())
            pipeline = _DEFAULT["default"]
    return pipeline.triage(submission)
