"""The running service's side of the learning loop: serve the registry's champion, run retrain jobs.

``ModelManager.refresh`` reads the `champion` alias and, when it names another version than the
one served, downloads and loads that bundle and swaps it into the pipeline in one assignment
(requests already running finish on the models they started with). It runs at start-up, every
``model_poll_s`` seconds, and right after a retrain job in this process promoted a new version.
Retrain jobs run one at a time in a background thread; their progress is kept in memory.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triage.cases import audit
from triage.cases.pipeline import Pipeline
from triage.config import Settings
from triage.errors import Conflict, NotFound
from triage.nlp.artifacts import load
from triage.nlp.manifest import BUNDLE
from triage.nlp.model_bundle import Bundle
from triage.store.db import Database
from triage.store.tables import utcnow

if TYPE_CHECKING:
    from training.promotion import ChampionChange

log = logging.getLogger("triage.service.models")
MAX_JOBS_KEPT = 50


@dataclass
class Job:
    """One retrain job as the API shows it."""

    id: str
    requested_by: str
    created_at: datetime
    state: str = "queued"  # queued | running | succeeded | failed
    stage: str = "queued"
    progress: float = 0.0
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "requested_by": self.requested_by,
            "created_at": self.created_at,
            "state": self.state,
            "stage": self.stage,
            "progress": round(self.progress, 3),
            "finished_at": self.finished_at,
            "result": self.result,
            "error": self.error,
        }


@dataclass
class ModelManager:
    settings: Settings
    db: Database
    pipeline: Pipeline
    served_version: int | None = None
    jobs: dict[str, Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock)
    _running: str | None = None
    _registry: Any = None

    def registry(self) -> Any:
        """One client per service (the poll reuses its connection pool)."""
        if self._registry is None:
            from training.registry import ModelRegistry

            self._registry = ModelRegistry(self.settings)
        return self._registry

    def refresh(self) -> bool:
        """Serve the registry's champion if it changed; True when the models were swapped."""
        with self._refresh_lock:
            reg = self.registry()
            champ = reg.champion()
            if champ is None or champ.version == self.served_version:
                return False
            folder: Path = reg.download(champ)
            bundle: Bundle = load(
                folder,
                kinds=(BUNDLE,),
                embedder=self.pipeline.embedder,
                cold_start_weight=self.settings.cold_start_weight,
                label=f"{reg.name}/v{champ.version}",
                cold_start=getattr(self.pipeline.agency_router, "cold_", None),
            )
            self.pipeline.swap_models(
                bundle.agency_router, bundle.field_router, label=bundle.label, auto_threshold=bundle.auto_threshold
            )
            self.served_version = champ.version
            log.info("now serving %s (%s)", bundle.label, self.pipeline.model_version)
            return True

    # ---- promote / rollback by hand ---------------------------------------------------------
    def promote(self, version: int, actor: str) -> ChampionChange:
        """Make ``version`` the champion (audited) and serve it here at once; other workers follow on their poll."""
        from training.promotion import promote

        change = promote(self.settings, self.db, version, actor=actor, registry=self.registry())
        self.refresh()
        return change

    def rollback(self, actor: str) -> ChampionChange:
        """Give the champion back to the previous holder (audited) and serve it here at once."""
        from training.promotion import rollback

        change = rollback(self.settings, self.db, actor=actor, registry=self.registry())
        self.refresh()
        return change

    def running_job(self) -> Job | None:
        running = self._running
        return None if running is None else self.jobs.get(running)

    # ---- retrain jobs ---------------------------------------------------------------------
    def start_retrain(self, requested_by: str, *, seed: Path | None = None) -> Job:
        """Queue a retrain in a background thread (audited as ``model_retrain``); Conflict while another one runs."""
        with self._lock:
            if self._running is not None:
                raise Conflict(f"retrain job {self._running} is still running; one job at a time")
            job = Job(id=uuid.uuid4().hex[:12], requested_by=requested_by, created_at=utcnow())
            self.jobs[job.id] = job
            self._running = job.id
            while len(self.jobs) > MAX_JOBS_KEPT:
                self.jobs.pop(next(iter(self.jobs)))
        try:
            with self.db.session() as s:
                audit.record(
                    s,
                    actor=requested_by,
                    action="model_retrain",
                    after={"job": job.id, "registry_model": self.settings.registry_model},
                    model_version=self.pipeline.model_version,
                )
        except Exception:
            with self._lock:
                self._running = None
                self.jobs.pop(job.id, None)
            raise
        threading.Thread(target=self._run, args=(job, seed), name=f"retrain-{job.id}", daemon=True).start()
        return job

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no retrain job {job_id!r} in this process")
        return job

    def _run(self, job: Job, seed: Path | None) -> None:
        from training.retrain import retrain

        def progress(stage: str, fraction: float) -> None:
            job.stage, job.progress = stage, fraction

        job.state = "running"
        try:
            result = retrain(
                self.settings,
                self.db,
                embedder=self.pipeline.embedder,
                seed=seed,
                created_by=job.requested_by,
                progress=progress,
                cold_start=getattr(self.pipeline.agency_router, "cold_", None),
            )
            job.result = {
                k: result.as_dict()[k]
                for k in ("run_id", "version", "promoted", "reasons", "champion_version", "auto_route", "dataset")
            }
            job.result["metrics"] = result.metrics  # overall and per agency (the confusion matrix is in MLflow)
            job.result["calibration"] = result.calibration
            if result.promoted:
                job.stage = "loading the new champion"
                self.refresh()
            job.state, job.stage = "succeeded", "done"
        except Exception as exc:  # the job reports its failure; the service keeps serving
            log.exception("retrain job %s failed", job.id)
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_at = utcnow()
            with self._lock:
                self._running = None
