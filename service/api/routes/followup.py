"""The submitter's follow-up (secret in a header) and staff access to a case's files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.responses import Response

from service import followups
from service.deps import Staff, State
from service.schemas.submissions import FollowUpAnswerOut, FollowUpInfoIn, FollowUpOut, RatingIn, WithdrawIn
from service.state import ServiceState
from service.uploads import attachment_response, file_store
from triage.cases.attachments import case_file, case_files

router = APIRouter(prefix="/api/v1", tags=["public"])

Secret = Annotated[
    str | None,
    Header(alias="X-Follow-Up-Secret", max_length=100, description="The secret given with the receipt."),
]
Code = Annotated[str, Path(max_length=32)]


def _out(svc: ServiceState, code: str, secret: str | None) -> FollowUpOut:
    v = followups.view(svc, code, secret)
    return FollowUpOut(
        tracking_code=v.code,
        status=v.state,
        status_label=v.status_label,
        response_deadline=v.answer_due,
        answers=[FollowUpAnswerOut(**a) for a in v.answers],
        can_add_information=v.can_add_information,
        can_withdraw=v.can_withdraw,
        can_rate=v.can_rate,
        rating=v.rating,
    )


@router.get("/follow-up/{code}", response_model=FollowUpOut, responses={404: {}})
def follow_up(code: Code, svc: State, secret: Secret = None) -> FollowUpOut:
    """Status, the agency's answers and what the submitter may do now (404 for a wrong code or secret)."""
    return _out(svc, code, secret)


@router.post("/follow-up/{code}/information", response_model=FollowUpOut, responses={404: {}, 409: {}})
def add_information(code: Code, body: FollowUpInfoIn, svc: State, secret: Secret = None) -> FollowUpOut:
    """Send the information a returned case asked for; the case resumes (409 unless it is returned)."""
    followups.add_information(svc, code, secret, body.text, [])
    return _out(svc, code, secret)


@router.post("/follow-up/{code}/withdraw", response_model=FollowUpOut, responses={404: {}, 409: {}})
def withdraw(code: Code, body: WithdrawIn, svc: State, secret: Secret = None) -> FollowUpOut:
    """Withdraw the submission while the case is open (409 after an answer)."""
    followups.withdraw(svc, code, secret, body.reason)
    return _out(svc, code, secret)


@router.post("/follow-up/{code}/rating", response_model=FollowUpOut, responses={404: {}, 409: {}})
def rate(code: Code, body: RatingIn, svc: State, secret: Secret = None) -> FollowUpOut:
    """Rate the latest answer once; "not_solved" reopens or escalates the case (TRIAGE_FOLLOWUP_NOT_SOLVED)."""
    followups.rate(svc, code, secret, body.rating, body.comment)
    return _out(svc, code, secret)


@router.get("/cases/{case_id}/files", tags=["cases"], responses={403: {}, 404: {}})
def files(case_id: int, who: Staff, svc: State) -> list[dict[str, object]]:
    """The case's files (clerks, admins, the case agency's handlers; analysts get 403)."""
    with svc.db.read() as s:
        return [
            {
                "id": a.id,
                "filename": a.filename,
                "media_type": a.media_type,
                "size": a.size,
                "sha256": a.sha256,
                "owner": a.owner,
                "uploaded_at": a.created_at.isoformat(),
            }
            for a in case_files(s, who, case_id)
        ]


@router.get("/cases/{case_id}/files/{file_id}", tags=["cases"], responses={403: {}, 404: {}})
def download(case_id: int, file_id: int, who: Staff, svc: State) -> Response:
    """One file, as an attachment (never rendered inline), nosniff."""
    with svc.db.read() as s:
        row = case_file(s, who, case_id, file_id)
        name, media, digest = row.filename, row.media_type, row.sha256
    return attachment_response(file_store(svc.settings).read(digest), name, media)
