"""Filing a submission from either door (the API and the web form): the same settings, the same metrics."""

from __future__ import annotations

import time
from functools import partial

from service.state import ServiceState
from triage.cases.intake import NewSubmission, Receipt, receive


def file_submission(svc: ServiceState, new: NewSubmission, *, idempotency_key: str | None) -> Receipt:
    """Intake as configured (auto-routing included), timed into the service's metrics."""
    metrics = svc.metrics
    started = time.perf_counter()
    receipt = receive(
        svc.db,
        new,
        pipeline=svc.pipeline,
        idempotency_key=idempotency_key,
        policy=svc.policy,
        now=svc.now(),
        auto_route=svc.settings.auto_route,
        observe=None if metrics is None else partial(metrics.triaged, auto_route=svc.settings.auto_route),
    )
    if metrics is not None and not receipt.replayed:
        metrics.intake_seconds.observe(time.perf_counter() - started)
    return receipt
