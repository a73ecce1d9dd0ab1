"""Public intake and tracking."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from service.deps import State, intake_rate_limit
from service.intake import file_submission
from service.labels import STATUS_LABELS
from service.schemas.submissions import ReceiptOut, SubmissionIn, TrackOut
from service.state import ServiceState, in_lane
from triage.cases.intake import NewSubmission
from triage.errors import InvalidInput, NotFound
from triage.store.repositories import Submissions

router = APIRouter(prefix="/api/v1", tags=["public"])

IDEMPOTENCY_KEY_MAX = 200


@router.post(
    "/submissions",
    status_code=201,
    response_model=ReceiptOut,
    dependencies=[Depends(intake_rate_limit)],
    responses={422: {"description": "Invalid field, or Idempotency-Key reused with another body"}, 429: {}},
)
async def submit(
    body: SubmissionIn,
    response: Response,
    svc: State,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=IDEMPOTENCY_KEY_MAX,
            description="Any unique string (e.g. a UUID); a retry with the same key and body creates nothing new.",
        ),
    ] = None,
) -> ReceiptOut:
    """Send a submission; the answer (201) carries the tracking code and the response deadline."""
    return await in_lane(svc.intake_lane, _submit, body, response, svc, idempotency_key)


def _submit(body: SubmissionIn, response: Response, svc: ServiceState, idempotency_key: str | None) -> ReceiptOut:
    """Intake in the submissions lane (encoder, similar-case search, database write), off the event loop."""
    key = None if idempotency_key is None else idempotency_key.strip()
    if key is not None and (not key or not key.isprintable()):
        raise InvalidInput("Idempotency-Key must be 1-200 printable characters")
    contact = body.contact
    receipt = file_submission(
        svc,
        NewSubmission(
            kind=body.kind,
            submitter_type=body.submitter_type,
            title=body.title,
            content=body.content,
            province=body.province,
            contact_name=contact.name if contact else None,
            contact_email=contact.email if contact else None,
            contact_phone=contact.phone if contact else None,
            contact_address=contact.address if contact else None,
            publish_consent=body.publish_consent,
        ),
        idempotency_key=key,
    )
    if receipt.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return ReceiptOut(
        tracking_code=receipt.tracking_code,
        received_at=receipt.received_at,
        response_deadline=receipt.answer_due,
        forward_deadline=receipt.forward_due,
        status_url=f"/api/v1/track/{receipt.tracking_code}",
    )


@router.get("/track/{code}", response_model=TrackOut)
def track(code: str, svc: State) -> TrackOut:
    """Where a submission stands: status and dates only."""
    with svc.db.read() as s:
        sub = Submissions(s).by_tracking_code(code.strip().upper()) if len(code) <= 32 else None
        if sub is None:
            raise NotFound(f"no submission with tracking code {code[:32]!r}")
        case = sub.case
        closed = case.ended_at
        return TrackOut(
            tracking_code=sub.tracking_code,
            status=case.state,
            status_label=STATUS_LABELS.get(case.state, case.state),
            received_at=sub.created_at,
            response_deadline=case.answer_due,
            answered_at=case.answered_at,
            closed_at=closed,
            last_update=case.updated_at,
        )
