"""The running service's side of the learning loop: serve the registry's champion, run retrain jobs.

``ModelManager.refresh`` reads the `champion` alias and, when it names another version than the
one served, downloads and loads that bundle and swaps it into the pipeline in one assignment
(requests already running finish on the models they started with). It runs at start-up, every
``model_poll_s`` seconds, and right after a retrain job in this process promoted a new version.
Retrain jobs are rows of the jobs table (``triage.cases.jobs``): any worker queues one, exactly one
worker's runner thread claims and runs it, progress and result are stored, and every worker answers
for it; one retrain at a time across all of them.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from triage.cases import audit
from triage.cases.jobs import JobQueue, JobView
from triage.cases.pipeline import Pipeline
from triage.config import Settings
from triage.errors import Conflict, NotFound
from triage.nlp.artifacts import load
from triage.nlp.manifest import BUNDLE
from triage.nlp.model_bundle import Bundle
from triage.store.db import Database

if TYPE_CHECKING:
    from training.promotion import ChampionChange

log = logging.getLogger("triage.service.models")
RETRAIN = "retrain"
HEARTBEAT_S = 30.0


@dataclass
class ModelManager:
    settings: Settings
    db: Database
    pipeline: Pipeline
    served_version: int | None = None
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock)
    _registry: Any = None
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _runner: threading.Thread | None = None

    @property
    def queue(self) -> JobQueue:
        return JobQueue(self.db, stale_after=timedelta(seconds=self.settings.job_stale_s))

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

    def running_job(self) -> JobView | None:
        """The retrain queued or running now, in any worker."""
        return self.queue.active(RETRAIN)

    # ---- retrain jobs ---------------------------------------------------------------------
    def start_retrain(self, requested_by: str, *, seed: Path | None = None) -> JobView:
        """Queue a retrain (audited as ``model_retrain``, in the same transaction); Conflict while one is active."""
        payload = {"seed": str(seed)} if seed is not None else None
        try:
            with self.db.session() as s:
                job = self.queue.enqueue(RETRAIN, requested_by=requested_by, payload=payload, session=s)
                audit.record(
                    s,
                    actor=requested_by,
                    action="model_retrain",
                    after={"job": job.id, "registry_model": self.settings.registry_model},
                    model_version=self.pipeline.model_version,
                )
        except IntegrityError:  # another worker queued one between our check and our insert
            active = self.running_job()
            raise Conflict(f"retrain job {active.id if active else '?'} is still running; one job at a time") from None
        except Conflict as exc:
            raise Conflict(str(exc).replace("is still queued or running", "is still running")) from None
        self._wake.set()  # this worker's runner takes it at once (another worker's, within its poll)
        return job

    def job(self, job_id: str) -> JobView:
        try:
            return self.queue.get(job_id)
        except NotFound:
            raise NotFound(f"no retrain job {job_id!r}") from None

    # ---- the runner ---------------------------------------------------------------------------
    def start_runner(self) -> None:
        """Claim and run queued retrains in a daemon thread (every ``job_poll_s`` s, or at once when woken)."""
        if self._runner is not None or self.settings.job_poll_s <= 0:
            return
        self._stop.clear()
        self._runner = threading.Thread(target=self._loop, name="job-runner", daemon=True)
        self._runner.start()

    def stop_runner(self, timeout: float = 5.0) -> None:
        """Stop claiming; a job already running finishes in its thread (or is queued again once stale)."""
        self._stop.set()
        self._wake.set()
        if self._runner is not None:
            self._runner.join(timeout)
            self._runner = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.queue.claim([RETRAIN])
            except Exception:  # the database may be away for a moment; try again at the next poll
                log.exception("claiming a job failed")
                job = None
            if job is not None:
                self._run(job)
                continue
            self._wake.wait(self.settings.job_poll_s)
            self._wake.clear()

    def _run(self, job: JobView) -> None:
        from training.retrain import retrain

        queue = self.queue
        last: dict[str, Any] = {"stage": "starting", "progress": 0.0}
        done = threading.Event()

        def progress(stage: str, fraction: float) -> None:
            last["stage"], last["progress"] = stage, fraction
            queue.report(job.id, stage, fraction)

        def heartbeat() -> None:  # long stages (encoding) report nothing for minutes
            while not done.wait(HEARTBEAT_S):
                try:
                    queue.report(job.id, str(last["stage"]), float(last["progress"]))
                except Exception:
                    log.exception("job %s: heartbeat failed", job.id)

        beat = threading.Thread(target=heartbeat, name=f"heartbeat-{job.id}", daemon=True)
        beat.start()
        seed = (job.payload or {}).get("seed")
        try:
            result = retrain(
                self.settings,
                self.db,
                embedder=self.pipeline.embedder,
                seed=Path(seed) if seed else None,
                created_by=job.requested_by,
                progress=progress,
                cold_start=getattr(self.pipeline.agency_router, "cold_", None),
            )
            out = {
                k: result.as_dict()[k]
                for k in ("run_id", "version", "promoted", "reasons", "champion_version", "auto_route", "dataset")
            }
            out["metrics"] = result.metrics  # overall and per agency (the confusion matrix is in MLflow)
            out["calibration"] = result.calibration
            if result.promoted:
                progress("loading the new champion", 1.0)
                self.refresh()
            queue.finish(job.id, json_safe(out))
        except Exception as exc:  # the job reports its failure; the service keeps serving
            log.exception("retrain job %s failed", job.id)
            queue.fail(job.id, f"{type(exc).__name__}: {exc}")
        finally:
            done.set()


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)  # paths, dates


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types, for the job's stored result."""
    return json.loads(json.dumps(value, default=_plain))
