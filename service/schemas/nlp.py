"""The stateless text endpoints: route one text, compare two."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.schemas.common import MAX_CONTENT


class RouteRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_CONTENT, description="The submission's text (Vietnamese).")
    top_k: int = Field(default=3, ge=1, le=20)


class RankedLabel(BaseModel):
    label: str
    score: float
    code: str | None = Field(default=None, description="The agency's code (top-level body: a ministry or a province).")
    unit: str | None = Field(default=None, description="The unit under the agency that handles it (e.g. Cục Thuế).")
    reason: str | None = Field(default=None, description="The catalogue procedure and field behind the suggestion.")


class RankedProgrammeField(BaseModel):
    code: str
    name: str
    score: float


class RouteResponse(BaseModel):
    predictions: list[RankedLabel]
    local: bool = Field(default=False, description="A local matter: the named province's authorities handle it.")
    locality_reason: str = Field(default="", description="Why the matter is local, or a question for a ministry.")
    model_version: str
    programme_fields: list[RankedProgrammeField] = Field(
        default_factory=list,
        description="Programme fields (Resolution-57 task groups by default), top-3; 'other' when none fits.",
    )


class SimilarRequest(BaseModel):
    text1: str = Field(min_length=1, max_length=MAX_CONTENT)
    text2: str = Field(min_length=1, max_length=MAX_CONTENT)


class SimilarResponse(BaseModel):
    score: float = Field(description="Cosine of the two texts' embeddings (-1..1).")
    probability: float | None = Field(
        default=None, description="P(same matter) from the same-matter scorer; null in cosine mode."
    )
    likely_duplicate: bool = Field(description="The judged score clears the duplicate threshold.")
    threshold: float = Field(description="The threshold applied: to the probability, or to the cosine in cosine mode.")
    scorer: str = Field(description="'same_matter' or 'cosine' (TRIAGE_DUPLICATE_SCORER).")


class AgencyOut(BaseModel):
    code: str
    name: str
    kind: str
    parent: str | None
    aliases: list[str]
    fields: list[str]
