"""Published answers (/hoi-dap) as the JSON API gives them: masked texts only."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PublicAnswerOut(BaseModel):
    id: int
    agency_code: str | None
    kind: str
    title: str = Field(description="The question's title, personal data masked.")
    question: str = Field(description="The question, personal data masked.")
    answer: str = Field(description="The agency's answer, personal data masked.")
    published_at: datetime
    score: float | None = Field(default=None, description="Search relevance (only when searched).")
    url: str = Field(description="The answer's public page.")


class PublicAnswerList(BaseModel):
    items: list[PublicAnswerOut]
    total: int
    page: int
    per_page: int


class SimilarAnsweredOut(BaseModel):
    items: list[PublicAnswerOut]


class PublishedOut(BaseModel):
    case_id: int
    published: bool
    answer: PublicAnswerOut | None = None
