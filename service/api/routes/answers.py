"""Published answers: search them (public), the similar answered questions while a citizen types, and
publish / withdraw an answered case (a handler of its agency or an admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from service.deps import Staff, State, text_rate_limit
from service.schemas.answers import PublicAnswerList, PublicAnswerOut, PublishedOut, SimilarAnsweredOut
from service.schemas.cases import MAX_ID
from triage.cases.public_answers import PublicAnswer, get_public, publish, search, similar_answered, unpublish

router = APIRouter(prefix="/api/v1", tags=["answers"])
MAX_Q = 2000


def answer_out(a: PublicAnswer) -> PublicAnswerOut:
    return PublicAnswerOut(**a.as_dict(), url=f"/hoi-dap/{a.id}")


@router.get("/answers", response_model=PublicAnswerList)
def list_answers(
    svc: State,
    q: Annotated[str | None, Query(max_length=MAX_Q, description="Search text; none = newest first.")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=50)] = 10,
) -> PublicAnswerList:
    """Published answers (personal data masked), searched server-side or newest first."""
    with svc.db.read() as s:
        items, total = search(s, q, limit=per_page, offset=(page - 1) * per_page)
    return PublicAnswerList(items=[answer_out(a) for a in items], total=total, page=page, per_page=per_page)


@router.get(
    "/answers/similar",
    response_model=SimilarAnsweredOut,
    dependencies=[Depends(text_rate_limit)],
    responses={429: {}},
)
def similar_answers(
    svc: State,
    q: Annotated[str, Query(min_length=1, max_length=MAX_Q, description="What the citizen is writing.")],
    k: Annotated[int, Query(ge=1, le=10)] = 5,
) -> SimilarAnsweredOut:
    """ "Câu hỏi tương tự đã được trả lời": published answers close to a text being written (rate-limited)."""
    with svc.db.read() as s:
        items = similar_answered(s, q, k=k)
    return SimilarAnsweredOut(items=[answer_out(a) for a in items])


@router.get("/answers/{answer_id}", response_model=PublicAnswerOut, responses={404: {}})
def get_answer(svc: State, answer_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> PublicAnswerOut:
    with svc.db.read() as s:
        return answer_out(get_public(s, answer_id))


_STAFF_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such case for this account"},
    409: {"description": "Not answered, no consent, or already published"},
}


@router.post("/cases/{case_id}/publish", response_model=PublishedOut, responses=_STAFF_ERRORS)
def publish_case(svc: State, who: Staff, case_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> PublishedOut:
    """Publish the case's answer on /hoi-dap (consent required; personal data masked; audited)."""
    answer = svc.db.transaction(lambda s: publish(s, who, case_id, now=svc.now()))
    return PublishedOut(case_id=case_id, published=True, answer=answer_out(answer))


@router.delete("/cases/{case_id}/publish", response_model=PublishedOut, responses={404: {}})
def unpublish_case(svc: State, who: Staff, case_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> PublishedOut:
    """Withdraw the case's published answer (audited)."""
    svc.db.transaction(lambda s: unpublish(s, who, case_id, now=svc.now()))
    return PublishedOut(case_id=case_id, published=False)
