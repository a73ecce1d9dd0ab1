"""Open311 GeoReport v2 (JSON) over the same intake and cases, so civic-tech clients can file and follow.

Mapping: a *service* is a submission kind (phan_anh, kien_nghi, sang_kien, giai_phap), with the
province and the submitter type as its attributes; a *service request* is a submission, its
``service_request_id`` the tracking code (unguessable: who holds it may read the status, as on
``/track``); ``status`` is ``open`` until the case is answered or ended, then ``closed``; the
description read back is masked (phone numbers, e-mails, ids). The title the core needs is the first
sentence of the description. Errors use GeoReport's shape: ``[{"code": 400, "description": "..."}]``.
Only the JSON format is served (``.xml`` answers 400).
"""

from __future__ import annotations

import hmac
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from service.deps import State, intake_rate_limit
from service.intake import file_submission
from service.labels import STATUS_LABELS
from service.limits import read_form
from service.state import ServiceState, in_lane
from triage.cases.intake import NewSubmission
from triage.cases.workflow import KINDS
from triage.errors import InvalidInput, NotFound, PermissionDenied, TriageError
from triage.nlp.agencies import default_registry
from triage.nlp.text import mask_pii
from triage.store.repositories import Submissions
from triage.store.tables import Case, Submission

router = APIRouter(prefix="/open311/v2", tags=["open311"])
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_LIST = 1000  # GeoReport: at most 1000 requests per answer
DEFAULT_DAYS = 90  # GeoReport: the default window when no dates are given
CLOSED = frozenset({"responded", "closed", "duplicate", "rejected"})
SERVICES: dict[str, tuple[str, str]] = {
    "phan_anh": ("Phản ánh", "Phản ánh về hành vi hành chính, quy định hành chính, tình trạng tại địa phương."),
    "kien_nghi": ("Kiến nghị", "Kiến nghị sửa đổi, bổ sung quy định, chính sách."),
    "sang_kien": ("Sáng kiến", "Sáng kiến về khoa học, công nghệ, đổi mới sáng tạo và chuyển đổi số."),
    "giai_phap": ("Giải pháp", "Giải pháp cho một vấn đề của cơ quan nhà nước hoặc xã hội."),
}
SUBMITTERS = {"citizen": "Người dân", "organisation": "Tổ chức", "business": "Doanh nghiệp", "expert": "Chuyên gia"}


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse(status_code=code, content=[{"code": code, "description": description}])


def _failure(exc: TriageError) -> JSONResponse:
    if isinstance(exc, NotFound):
        return _error(404, str(exc))
    if isinstance(exc, PermissionDenied):
        return _error(403, str(exc))
    return _error(400, str(exc))


def _json_only(fmt: str) -> None:
    if fmt != "json":
        raise InvalidInput(f"format {fmt[:10]!r} is not served: use .json")


def _key_ok(svc: ServiceState, given: str | None) -> bool:
    expected = svc.settings.open311_api_key
    return expected is not None and hmac.compare_digest((given or "").encode(), expected.get_secret_value().encode())


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(LOCAL).isoformat(timespec="seconds")


def _expected(due: date | None) -> str | None:
    """The end of the answer deadline's day, local time (the law counts days)."""
    return None if due is None else datetime.combine(due, time(23, 59, 59), LOCAL).isoformat()


def _title(description: str) -> str:
    first = description.strip().split("\n", 1)[0]
    for stop in (". ", "? ", "! "):
        if stop in first:
            first = first.split(stop, 1)[0]
    return first[:120].strip() or description.strip()[:120]


@router.get("/services.{fmt}")
def services(fmt: str) -> JSONResponse:
    """GeoReport ``GET services``: one service per submission kind."""
    try:
        _json_only(fmt)
    except TriageError as exc:
        return _failure(exc)
    return JSONResponse(
        [
            {
                "service_code": kind,
                "service_name": SERVICES[kind][0],
                "description": SERVICES[kind][1],
                "metadata": True,
                "type": "batch",
                "keywords": "pakn, " + SERVICES[kind][0].lower(),
                "group": "PAKN",
            }
            for kind in KINDS
        ]
    )


@router.get("/services/{code}.{fmt}")
def service_definition(code: str, fmt: str) -> JSONResponse:
    """GeoReport ``GET service definition``: the extra attributes a request of this service may carry."""
    try:
        _json_only(fmt)
        if code not in KINDS:
            raise NotFound(f"unknown service_code {code[:40]!r}")
    except TriageError as exc:
        return _failure(exc)
    provinces = sorted(default_registry().provinces(), key=lambda a: a.name)
    attributes = [
        {
            "variable": True,
            "code": "province",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": None,
            "order": 1,
            "description": "Tỉnh, thành phố liên quan",
            "values": [{"key": p.code, "name": p.name} for p in provinces],
        },
        {
            "variable": True,
            "code": "submitter_type",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": None,
            "order": 2,
            "description": "Người gửi là",
            "values": [{"key": k, "name": v} for k, v in SUBMITTERS.items()],
        },
        {
            "variable": True,
            "code": "ward",
            "datatype": "string",
            "required": False,
            "datatype_description": "Tên phường, xã",
            "order": 3,
            "description": "Phường, xã",
            "values": [],
        },
    ]
    return JSONResponse({"service_code": code, "attributes": attributes})


@router.post("/requests.{fmt}", dependencies=[Depends(intake_rate_limit)])
async def create_request(request: Request, fmt: str, svc: State) -> JSONResponse:
    """GeoReport ``POST service request`` (form-encoded): files a submission; answers its tracking code."""
    try:
        _json_only(fmt)
        form = await read_form(request)
        if svc.settings.open311_api_key is not None and not _key_ok(svc, str(form.get("api_key") or "")):
            raise PermissionDenied("api_key missing or invalid")
        new = _new_submission({k: str(v) for k, v in form.items()})
        receipt = await in_lane(svc.intake_lane, lambda: file_submission(svc, new, idempotency_key=None))
    except TriageError as exc:
        return _failure(exc)
    notice = f"Đã tiếp nhận; hạn trả lời {receipt.answer_due.strftime('%d/%m/%Y')} (ngày làm việc)."
    return JSONResponse([{"service_request_id": receipt.tracking_code, "service_notice": notice, "account_id": None}])


def _new_submission(form: dict[str, str]) -> NewSubmission:
    code = form.get("service_code", "").strip()
    if code not in KINDS:
        raise InvalidInput(f"service_code {code[:40]!r} is not one of {', '.join(KINDS)}")
    description = form.get("description", "").strip()
    if not description:
        raise InvalidInput("description is required")
    submitter = form.get("attribute[submitter_type]", "").strip() or "citizen"
    name = " ".join(p for p in (form.get("first_name", "").strip(), form.get("last_name", "").strip()) if p)
    return NewSubmission(
        kind=code,
        submitter_type=submitter,
        title=_title(description),
        content=description,
        province=form.get("attribute[province]", "").strip() or None,
        contact_name=name[:200] or None,
        contact_email=form.get("email", "").strip()[:320] or None,
        contact_phone=form.get("phone", "").strip()[:40] or None,
        ward=form.get("attribute[ward]", "").strip() or None,
        address=form.get("address_string", "").strip() or None,
        latitude=form.get("lat", "").strip() or None,
        longitude=form.get("long", "").strip() or None,
    )


def _request_row(sub: Submission, case: Case) -> dict[str, Any]:
    agency = None
    if case.agency_code:
        try:
            agency = default_registry().get(case.agency_code).name
        except NotFound:
            agency = case.agency_code
    return {
        "service_request_id": sub.tracking_code,
        "status": "closed" if case.state in CLOSED else "open",
        "status_notes": STATUS_LABELS.get(case.state, case.state),
        "service_name": SERVICES.get(sub.kind, (sub.kind, ""))[0],
        "service_code": sub.kind,
        "description": mask_pii(sub.content),
        "agency_responsible": agency,
        "service_notice": None,
        "requested_datetime": _iso(sub.created_at),
        "updated_datetime": _iso(case.updated_at),
        "expected_datetime": _expected(case.answer_due),
        "address": sub.address,
        "address_id": None,
        "zipcode": None,
        "lat": sub.latitude,
        "long": sub.longitude,
        "media_url": None,
    }


@router.get("/requests.{fmt}")
def list_requests(
    fmt: str,
    svc: State,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    api_key: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """GeoReport ``GET service requests``: by ids (anyone holding them), or a listing (with the api_key only)."""
    try:
        _json_only(fmt)
        rows = _find(svc, service_request_id, service_code, status, start_date, end_date, api_key)
    except TriageError as exc:
        return _failure(exc)
    return JSONResponse(rows)


def _when(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{what} must be a W3C date-time, e.g. 2026-01-31T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL)


def _find(
    svc: ServiceState,
    ids: str | None,
    service_code: str | None,
    status: str | None,
    start: str | None,
    end: str | None,
    api_key: str | None,
) -> list[dict[str, Any]]:
    codes = [c.strip().upper() for c in (ids or "").split(",") if c.strip()]
    kinds = {c.strip() for c in (service_code or "").split(",") if c.strip()}
    if status and status not in ("open", "closed"):
        raise InvalidInput("status must be open or closed")
    with svc.db.read() as s:
        if codes:
            subs = [sub for c in codes[:MAX_LIST] if len(c) <= 32 and (sub := Submissions(s).by_tracking_code(c))]
        else:
            if not _key_ok(svc, api_key):
                raise PermissionDenied(
                    "listing requests needs the api_key (submissions are not public); ask by service_request_id"
                )
            until = _when(end, "end_date") or svc.now()
            since = _when(start, "start_date") or until - timedelta(days=DEFAULT_DAYS)
            stmt = (
                select(Submission)
                .where(Submission.created_at >= since, Submission.created_at <= until)
                .order_by(Submission.id.desc())
                .limit(MAX_LIST)
            )
            subs = list(s.scalars(stmt))
        rows = []
        for sub in subs:
            row = _request_row(sub, sub.case)
            if (kinds and sub.kind not in kinds) or (status and row["status"] != status):
                continue
            rows.append(row)
        return rows


@router.get("/requests/{request_id}.{fmt}")
def get_request(request_id: str, fmt: str, svc: State) -> JSONResponse:
    """GeoReport ``GET service request``: a list holding the one request (404 in GeoReport's shape)."""
    try:
        _json_only(fmt)
        rows = _find(svc, request_id, None, None, None, None, None) if len(request_id) <= 32 else []
        if not rows:
            raise NotFound(f"no service request {request_id[:32]!r}")
    except TriageError as exc:
        return _failure(exc)
    return JSONResponse(rows)
