"""The learning loop over HTTP: retrain in the background, follow the job, list the registered versions,
promote a version or roll the champion back (audited, served by this process at once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, status

from service.deps import Staff, State
from service.learning import ModelManager
from service.schemas.models import ChampionChangeOut, JobOut, ModelsOut, ModelVersionOut
from service.state import ServiceState
from triage.cases.accounts import EVERY_AGENCY
from triage.errors import ModelMissing

if TYPE_CHECKING:
    from training.promotion import ChampionChange

router = APIRouter(prefix="/api/v1/models", tags=["models"])
MAX_VERSION = 2**31 - 1
Version = Annotated[int, Path(ge=1, le=MAX_VERSION, description="A registered version number.")]
JobId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$", description="The job's id.")]


def _manager(svc: State) -> ModelManager:
    if svc.models is None:
        raise ModelMissing("model management is not available in this process")
    return svc.models


@router.post("/retrain", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
def retrain(who: Staff, svc: State) -> JobOut:
    """Retrain on the reviewed labels (background job, one at a time: 409 while one runs; admin)."""
    who.require_over("models.retrain", EVERY_AGENCY)
    job = _manager(svc).start_retrain(who.username)
    return JobOut(**job.as_dict())


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: {"description": "No such job"}})
def job(job_id: JobId, who: Staff, svc: State) -> JobOut:
    """A retrain job's state, stage and progress; when done, the run, version and gate decision."""
    who.require("models.retrain")
    return JobOut(**_manager(svc).job(job_id).as_dict())


@router.get("", response_model=ModelsOut)
def list_models(who: Staff, svc: State) -> ModelsOut:
    """Registered versions (newest first) with their gate decision, and the version served now."""
    who.require("models.read")
    manager = _manager(svc)
    reg = manager.registry()
    return ModelsOut(
        served=svc.pipeline.model_version,
        served_registry_version=manager.served_version,
        versions=[ModelVersionOut(**v.as_dict()) for v in reg.versions()],
    )


@router.post("/reload", response_model=ModelsOut)
def reload(who: Staff, svc: State) -> ModelsOut:
    """Check the registry's champion now instead of waiting for the next poll (admin)."""
    who.require("models.reload")
    _manager(svc).refresh()
    return list_models(who, svc)


def _change_out(change: ChampionChange, manager: ModelManager, svc: ServiceState) -> ChampionChangeOut:
    return ChampionChangeOut(
        **change.as_dict(), served=svc.pipeline.model_version, served_registry_version=manager.served_version
    )


@router.post(
    "/rollback",
    response_model=ChampionChangeOut,
    responses={409: {"description": "The champion has no predecessor to roll back to"}},
)
def rollback(who: Staff, svc: State) -> ChampionChangeOut:
    """Give the champion back to the version that held it before (audited; admin); repeat to walk further back."""
    who.require_over("models.promote", EVERY_AGENCY)
    manager = _manager(svc)
    return _change_out(manager.rollback(who.username), manager, svc)


@router.post(
    "/{version}/promote",
    response_model=ChampionChangeOut,
    responses={404: {"description": "No such registered version"}},
)
def promote(version: Version, who: Staff, svc: State) -> ChampionChangeOut:
    """Make a registered version the champion by hand (bypasses the gate; audited; admin) and serve it at once."""
    who.require_over("models.promote", EVERY_AGENCY)
    manager = _manager(svc)
    return _change_out(manager.promote(version, who.username), manager, svc)
