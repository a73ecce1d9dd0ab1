"""Stateless text endpoints: rank agencies for a text, judge whether two texts are the same matter."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from service.deps import State, text_rate_limit
from service.schemas.nlp import (
    RankedLabel,
    RankedProgrammeField,
    RouteRequest,
    RouteResponse,
    SimilarRequest,
    SimilarResponse,
)
from triage.errors import InvalidInput
from triage.nlp.text import normalize

router = APIRouter(prefix="/api/v1", tags=["text"])


@router.post("/route", response_model=RouteResponse, dependencies=[Depends(text_rate_limit)], responses={429: {}})
def route(body: RouteRequest, svc: State) -> RouteResponse:
    text = normalize(body.text)
    if not text:
        raise InvalidInput("text is empty after removing whitespace and control characters")
    models = svc.pipeline.models  # one version for the answer and its label, even during a swap
    router = models.agency_router
    embedding = svc.pipeline.embedder.encode([text])  # one encode for both suggestions
    routing = router.route([text], k=body.top_k, embeddings=embedding)[0]
    ranked, locality = routing.agencies, routing.locality
    programme = svc.pipeline.rank_programme_fields(text, embedding[0])
    return RouteResponse(
        predictions=[
            RankedLabel(
                label=router.names_[p.code],
                score=round(p.score, 6),
                code=p.code,
                unit=router.registry_.name_of(p.unit),
                reason=p.reason,
            )
            for p in ranked
        ],
        local=locality.local,
        locality_reason=locality.reason,
        model_version=svc.pipeline.version_of(models),
        programme_fields=[RankedProgrammeField(code=p.code, name=p.name, score=p.score) for p in programme],
    )


@router.post("/similar", response_model=SimilarResponse, dependencies=[Depends(text_rate_limit)], responses={429: {}})
def similar(body: SimilarRequest, request: Request, svc: State) -> SimilarResponse:
    text1, text2 = normalize(body.text1), normalize(body.text2)
    pipeline = svc.pipeline
    vecs = pipeline.embedder.encode([text1, text2])
    cosine = round(float(vecs[0] @ vecs[1]), 6)
    scorer = pipeline.same_matter
    threshold = pipeline.duplicate_threshold
    if scorer is None:
        limit = -1.0 if threshold is None else float(threshold)
        return SimilarResponse(score=cosine, likely_duplicate=cosine >= limit, threshold=limit, scorer="cosine")
    p = round(float(scorer.score_candidates(text1, vecs[0], [(text2, vecs[1])])[0]), 6)
    limit = scorer.threshold_ if threshold is None else float(threshold)
    return SimilarResponse(
        score=cosine, probability=p, likely_duplicate=p >= limit, threshold=limit, scorer="same_matter"
    )
