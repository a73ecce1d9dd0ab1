"""The citizen channel on the staff case page: place, files and what the submitter sent after the receipt.

Files are listed and served to clerks, admins and the case agency's handlers only; an analyst sees the
masked view (no address, masked texts) and no files.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from service.deps import State
from service.uploads import attachment_response, file_store
from service.web.session import WebStaff
from triage.cases.accounts import Principal
from triage.cases.attachments import case_file, case_files
from triage.cases.followup import RATINGS, followups_of
from triage.nlp.text import mask_personal
from triage.store.repositories import Cases, Submissions

router = APIRouter(include_in_schema=False)
FOLLOW_UP_LABELS = {"information": "Người gửi bổ sung thông tin", "withdraw": "Người gửi rút phản ánh",
                    "rating": "Người gửi đánh giá câu trả lời"}  # fmt: skip


def citizen_context(s: Session, who: Principal, case_id: int) -> dict[str, Any]:
    """Places per submission, the files (None when this account may not read files) and the follow-ups."""
    case = Cases(s).get(case_id)
    if case is None or not who.sees(case.agency_code):
        return {"places": {}, "files": None, "followups": []}
    places = {}
    for sub in Submissions(s).of_case(case_id):
        if sub.ward or sub.address or sub.latitude is not None:
            places[sub.id] = {
                "ward": sub.ward,
                "address": None if who.masked else sub.address,
                "coordinates": None if who.masked or sub.latitude is None else f"{sub.latitude}, {sub.longitude}",
            }
    files = None
    if who.may("files.read"):
        files = [
            {"id": a.id, "filename": a.filename, "media_type": a.media_type, "size": a.size, "sha256": a.sha256,
             "url": f"/staff/cases/{case_id}/files/{a.id}", "from_followup": a.owner == "followup"}
            for a in case_files(s, who, case_id)
        ]  # fmt: skip
    followups = [
        {
            "kind": FOLLOW_UP_LABELS.get(f.kind, f.kind),
            "rating": RATINGS.get(f.rating or "", None),
            "body": (mask_personal(f.body) if who.masked else f.body) if f.body else None,
            "at": f.at,
        }
        for f in followups_of(s, case_id)
    ]
    return {"places": places, "files": files, "followups": followups}


@router.get("/staff/cases/{case_id}/files/{file_id}")
def download(
    request: Request,
    case_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    file_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    who: WebStaff,
    svc: State,
) -> Response:
    with svc.db.read() as s:
        row = case_file(s, who, case_id, file_id)
        name, media, digest = row.filename, row.media_type, row.sha256
    return attachment_response(file_store(svc.settings).read(digest), name, media)
