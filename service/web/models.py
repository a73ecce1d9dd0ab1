"""The models page (handlers and admins): the model serving suggestions, every registered version with its
evaluation, retraining with a progress bar, and promote / rollback of the champion.

The page calls the same ``ModelManager`` methods as the JSON API (``service.api.routes.models``), so a
button and an API call check the same permissions, write the same audit events and hot-reload the
same way. The progress bar polls ``/staff/models/jobs/{id}`` (the job API's data under the session
cookie: the browser holds no bearer token) from ``static/models.js``; without scripts, a link reloads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from service.deps import State
from service.http_errors import status_of
from service.learning import ModelManager
from service.limits import read_form
from service.state import ServiceState
from service.web import casepage
from service.web.render import render
from service.web.session import WebStaff, check_csrf
from triage.cases.accounts import EVERY_AGENCY, Principal, Role
from triage.cases.jobs import JobView
from triage.errors import Conflict, ModelMissing, NotFound, PermissionDenied, TriageError
from triage.store.repositories import Labels

log = logging.getLogger("triage.service.models")
router = APIRouter(include_in_schema=False)
MAX_VERSION = 2**31 - 1
VersionNo = Annotated[int, PathParam(ge=1, le=MAX_VERSION)]
JobId = Annotated[str, PathParam(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]
VERSIONS_SHOWN = 30

JOB_STATES = {"queued": "Đang chờ", "running": "Đang chạy", "succeeded": "Hoàn tất", "failed": "Thất bại"}
JOB_STAGES = {
    "queued": "Đang chờ bắt đầu",
    "dataset": "Chuẩn bị dữ liệu từ các nhãn đã duyệt",
    "encoding": "Mã hoá văn bản",
    "training": "Huấn luyện bộ phân loại",
    "evaluating": "Đánh giá trên tập kiểm tra cố định",
    "comparing with the champion": "So sánh với phiên bản đang phục vụ",
    "logging to MLflow": "Ghi kết quả vào MLflow",
    "loading the new champion": "Nạp phiên bản mới để phục vụ",
    "done": "Xong",
}
NOTICES = {
    "promote": "Đã đưa phiên bản v{v} vào phục vụ. Các gợi ý mới dùng phiên bản này.",
    "rollback": "Đã quay lui: phiên bản v{v} phục vụ trở lại. Các gợi ý mới dùng phiên bản này.",
}


def _manifest(folder: Path | None) -> dict[str, Any] | None:
    if folder is None:
        return None
    try:
        data: dict[str, Any] = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _may_see(who: Principal) -> None:
    if who.role not in (Role.ADMIN, Role.HANDLER):
        raise PermissionDenied("Chỉ cán bộ xử lý và quản trị viên được xem trang mô hình.")


def _manager(svc: ServiceState) -> ModelManager:
    if svc.models is None:
        raise ModelMissing("Quản lý mô hình không khả dụng trong tiến trình này.")
    return svc.models


def _versions(manager: ModelManager) -> list[dict[str, Any]]:
    """The newest registered versions with their slice evaluation (overall and per agency) from MLflow."""
    reg = manager.registry()
    rows = []
    for info in reg.versions()[:VERSIONS_SHOWN]:
        metrics = reg.run_metrics(info)
        per = [
            {"code": code, "name": casepage.agency_name(code), **stats}
            for code, stats in metrics.get("per_agency", {}).items()
        ]
        rows.append(
            {
                "version": info.version,
                "champion": info.champion,
                "gate": info.tags.get("gate"),
                "reasons": info.tags.get("reasons", ""),
                "created_by": info.tags.get("created_by") or "—",
                "promoted_reason": info.tags.get("promoted_reason", ""),
                "macro_f1": metrics.get("macro_f1", _tag_float(info.tags.get("macro_f1"))),
                "top1": metrics.get("top1", _tag_float(info.tags.get("top1"))),
                "top3": metrics.get("top3"),
                "ece": metrics.get("ece"),
                "per_agency": sorted(per, key=lambda p: p["name"]),
            }
        )
    return rows


def _tag_float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _job_view(job: JobView | None) -> dict[str, Any] | None:
    if job is None:
        return None
    result = job.result or {}
    return {
        "id": job.id,
        "state": job.state,
        "state_label": JOB_STATES.get(job.state, job.state),
        "stage_label": JOB_STAGES.get(job.stage, job.stage),
        "percent": round(100 * job.progress),
        "active": job.state in ("queued", "running"),
        "requested_by": job.requested_by,
        "version": result.get("version"),
        "promoted": result.get("promoted"),
        "reasons": "; ".join(result.get("reasons") or []),
        "error": job.error,
    }


def _page(
    request: Request,
    who: Principal,
    svc: ServiceState,
    *,
    job_id: str | None = None,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    pipeline = svc.pipeline
    embedder = getattr(pipeline.embedder, "inner", pipeline.embedder)
    encoder_dir = getattr(embedder, "path", None) or getattr(pipeline.embedder, "path", None)
    parts = dict(p.split(":", 1) for p in pipeline.model_version.split("|")[1:] if ":" in p)
    sup = getattr(pipeline.agency_router, "supervised_", None)
    with svc.db.read() as s:
        labels_total, labels_confirmed = Labels(s).counts()
    manager = svc.models
    versions: list[dict[str, Any]] = []
    predecessor: int | None = None
    registry_error: str | None = None
    job: JobView | None = None
    if manager is not None:
        try:
            versions = _versions(manager)
            predecessor = manager.registry().predecessor() if versions else None
        except Exception as exc:  # an unreachable registry must not take the page down with it
            log.exception("model registry unreadable; the models page shows it without versions")
            registry_error = f"Không đọc được sổ đăng ký mô hình: {type(exc).__name__}."
        if job_id:
            try:
                job = manager.job(job_id)
            except NotFound:
                job = None
        job = job or manager.running_job()
    champion = next((v["version"] for v in versions if v["champion"]), None)
    notice = NOTICES[done].format(v=champion) if done in NOTICES and champion is not None else None
    context = {
        "model_version": pipeline.model_version,
        "encoder_id": pipeline.model_version.split("|")[0],
        "encoder": _manifest(encoder_dir),
        "agency_part": parts.get("agency", ""),
        "field_part": parts.get("field", ""),
        "router": _manifest(svc.settings.router_path) if sup is not None else None,
        "field_router": _manifest(svc.settings.field_router_path) if pipeline.field_router is not None else None,
        "settings": svc.settings,
        "labels_total": labels_total,
        "labels_confirmed": labels_confirmed,
        "versions": versions,
        "champion": champion,
        "served_registry_version": None if manager is None else manager.served_version,
        "predecessor": predecessor,
        "registry_error": registry_error,
        "job": _job_view(job),
        "job_stages": json.dumps(JOB_STAGES, ensure_ascii=False),
        "job_states": json.dumps(JOB_STATES, ensure_ascii=False),
        "notice": notice,
        "error": error,
        "may_promote": who.may_over("models.promote", EVERY_AGENCY),
        "may_retrain": who.may_over("models.retrain", EVERY_AGENCY),
    }
    return render(request, "staff/models.html", context, status_code=status_code)


@router.get("/staff/models", response_class=HTMLResponse)
def models_page(
    request: Request,
    who: WebStaff,
    svc: State,
    job: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9a-f]+$")] = None,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """The served model, the registered versions with their metrics, retrain progress, promote / rollback."""
    _may_see(who)
    return _page(request, who, svc, job_id=job, done=done)


@router.get("/staff/models/jobs/{job_id}")
def job_status(job_id: JobId, who: WebStaff, svc: State) -> JSONResponse:
    """A retrain job's state and progress for the page's progress bar (the data of GET /api/v1/models/jobs/{id})."""
    who.require("models.retrain")
    job = _manager(svc).job(job_id)
    body = {**job.as_dict(), "stage_label": JOB_STAGES.get(job.stage, job.stage)}
    return JSONResponse(jsonable_encoder(body), headers={"Cache-Control": "no-store"})


@router.post("/staff/models/retrain", response_class=HTMLResponse)
async def retrain(request: Request, who: WebStaff, svc: State) -> Response:
    """Start a retrain job and come back to the page, which follows its progress."""
    form = await read_form(request)
    return await run_in_threadpool(_retrain, request, form, who, svc)


def _retrain(request: Request, form: FormData, who: Principal, svc: ServiceState) -> Response:
    check_csrf(request, form, svc)
    who.require_over("models.retrain", EVERY_AGENCY)
    try:
        job = _manager(svc).start_retrain(who.username)
    except Conflict as exc:
        return _page(request, who, svc, error=_conflict_message(exc), status_code=status_of(exc))
    return RedirectResponse(f"/staff/models?job={job.id}#retrain", status_code=303)


@router.post("/staff/models/rollback", response_class=HTMLResponse)
async def rollback(request: Request, who: WebStaff, svc: State) -> Response:
    """Serve the previous champion again (audited); explained on the page when there is none."""
    form = await read_form(request)
    return await run_in_threadpool(_rollback, request, form, who, svc)


def _rollback(request: Request, form: FormData, who: Principal, svc: ServiceState) -> Response:
    check_csrf(request, form, svc)
    who.require_over("models.promote", EVERY_AGENCY)
    try:
        _manager(svc).rollback(who.username)
    except Conflict:
        message = "Không thể quay lui: phiên bản đang phục vụ không có phiên bản nào phục vụ trước nó."
        return _page(request, who, svc, error=message, status_code=409)
    return RedirectResponse("/staff/models?done=rollback", status_code=303)


@router.post("/staff/models/{version}/promote", response_class=HTMLResponse)
async def promote(request: Request, version: VersionNo, who: WebStaff, svc: State) -> Response:
    """Serve a registered version (audited; bypasses the gate); 404 page for a version that does not exist."""
    form = await read_form(request)
    return await run_in_threadpool(_promote, request, form, version, who, svc)


def _promote(request: Request, form: FormData, version: int, who: Principal, svc: ServiceState) -> Response:
    check_csrf(request, form, svc)
    who.require_over("models.promote", EVERY_AGENCY)
    try:
        _manager(svc).promote(version, who.username)
    except NotFound:
        raise
    except TriageError as exc:
        return _page(request, who, svc, error=str(exc), status_code=status_of(exc))
    return RedirectResponse("/staff/models?done=promote", status_code=303)


def _conflict_message(exc: Conflict) -> str:
    if "one job at a time" in str(exc):
        return "Đang có một lượt huấn luyện lại chạy; vui lòng chờ lượt đó xong rồi thử lại."
    return str(exc)
