"""Model registry, retrain jobs, the uncertainty queue and the drift report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class JobOut(BaseModel):
    id: str
    requested_by: str
    created_at: datetime
    state: str = Field(description="queued, running, succeeded or failed.")
    stage: str = Field(description="What the job is doing now (dataset, encoding, training, evaluating, ...).")
    progress: float = Field(description="0..1.")
    finished_at: datetime | None = None
    result: dict[str, Any] | None = Field(
        default=None, description="Run id, registered version, whether the gate promoted it and why, metrics."
    )
    error: str | None = None


class ModelVersionOut(BaseModel):
    version: int
    run_id: str | None
    champion: bool
    macro_f1: float | None
    top1: float | None
    gate: str | None
    reasons: str
    created_by: str | None


class ModelsOut(BaseModel):
    served: str = Field(description="The model version string every new suggestion stores.")
    served_registry_version: int | None
    versions: list[ModelVersionOut]


class ChampionChangeOut(BaseModel):
    action: str = Field(description="model_promote or model_rollback (the audit event's action).")
    registry_model: str
    before: int | None = Field(description="The champion before the move (None: there was none).")
    after: int = Field(description="The champion now.")
    actor: str
    event_seq: int = Field(description="Sequence number of the audit event that records the move.")
    served: str = Field(description="The model version string new suggestions carry from now on (this process).")
    served_registry_version: int | None


class UncertainCaseOut(BaseModel):
    case_id: int
    top_agency: str | None
    top_score: float
    margin: float = Field(description="Top-1 minus top-2 score: small = torn between two agencies.")
    entropy: float = Field(description="Normalised entropy of the stored scores: 1 = no idea.")
    model_version: str | None


class UncertainOut(BaseModel):
    by: str
    items: list[UncertainCaseOut]
