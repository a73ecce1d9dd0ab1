"""Public intake and tracking."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import ValidationError

from service.deps import State, intake_rate_limit
from service.intake import file_submission
from service.labels import STATUS_LABELS
from service.limits import register_upload_route
from service.schemas.submissions import ReceiptOut, SubmissionIn, TrackOut
from service.state import ServiceState, in_lane
from service.uploads import UploadForm, read_upload_form, upload_policy
from triage.cases.followup_secret import follow_up_path
from triage.cases.intake import NewSubmission, Receipt
from triage.errors import InvalidInput, NotFound
from triage.store.files import FileRefused, check_files
from triage.store.repositories import Submissions

router = APIRouter(prefix="/api/v1", tags=["public"])
register_upload_route("POST", r"/api/v1/submissions/with-files")

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
    return _receipt_out(file_submission(svc, new_submission(body), idempotency_key=key), response)


def new_submission(body: SubmissionIn) -> NewSubmission:
    """The core's submission from the API's body (the web form and Open311 build theirs)."""
    contact, place = body.contact, body.place
    return NewSubmission(
        kind=body.kind,
        submitter_type=body.submitter_type,
        title=body.title,
        content=body.content,
        province=body.province,
        contact_name=contact.name if contact else None,
        contact_email=contact.email if contact else None,
        contact_phone=contact.phone if contact else None,
        contact_address=contact.address if contact else None,
        ward=place.ward if place else None,
        address=place.address if place else None,
        latitude=place.lat if place else None,
        longitude=place.lon if place else None,
        publish_consent=body.publish_consent,
    )


def _receipt_out(receipt: Receipt, response: Response) -> ReceiptOut:
    if receipt.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return ReceiptOut(
        tracking_code=receipt.tracking_code,
        received_at=receipt.received_at,
        response_deadline=receipt.answer_due,
        forward_deadline=receipt.forward_due,
        status_url=f"/api/v1/track/{receipt.tracking_code}",
        follow_up_secret=receipt.followup_token,
        follow_up_url=None
        if receipt.followup_token is None
        else follow_up_path(receipt.tracking_code, receipt.followup_token),
        attachments=list(receipt.attachments),
    )


@router.post(
    "/submissions/with-files",
    status_code=201,
    response_model=ReceiptOut,
    dependencies=[Depends(intake_rate_limit)],
    responses={413: {"description": "Body over the upload limit"}, 422: {"description": "Invalid field or file"}},
)
async def submit_with_files(
    request: Request,
    response: Response,
    svc: State,
    idempotency_key: Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX)] = None,
) -> ReceiptOut:
    """multipart/form-data: part ``submission`` (the JSON of POST /submissions) and up to N parts ``files``.

    Files are checked by content (PDF, JPEG/PNG/WebP, docx/xlsx/odt; see TRIAGE_UPLOAD_*); images are
    re-encoded without metadata. Any refused file refuses the request (422, the reason per file).
    """
    upload = await read_upload_form(request, upload_policy(svc.settings))
    raw = str(upload.form.get("submission") or "")
    try:
        body = SubmissionIn.model_validate_json(raw)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"submission: {reasons or 'a JSON object is required'}") from None
    return await in_lane(svc.intake_lane, _submit_files, body, upload, response, svc, idempotency_key)


def _submit_files(
    body: SubmissionIn, upload: UploadForm, response: Response, svc: ServiceState, idempotency_key: str | None
) -> ReceiptOut:
    taken, refused = check_files(upload.files_of("files"), upload_policy(svc.settings))
    refused = upload.refused + refused
    if refused:
        raise FileRefused(" ".join(refused))
    key = None if idempotency_key is None else idempotency_key.strip()
    if key is not None and (not key or not key.isprintable()):
        raise InvalidInput("Idempotency-Key must be 1-200 printable characters")
    receipt = file_submission(svc, new_submission(body), idempotency_key=key, files=taken)
    return _receipt_out(receipt, response)


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
