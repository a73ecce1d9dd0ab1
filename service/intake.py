"""Filing a submission from either door (the API and the web form): the same settings, the same metrics."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial

from service.state import ServiceState
from service.uploads import file_store
from triage.cases.followup_secret import issue_token
from triage.cases.intake import NewSubmission, Receipt, receive
from triage.store.files import CheckedFile


def file_submission(
    svc: ServiceState,
    new: NewSubmission,
    *,
    idempotency_key: str | None,
    files: list[CheckedFile] | None = None,
    renew_secret_on_replay: bool = True,
) -> Receipt:
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
        files=files,
        file_store=file_store(svc.settings) if files else None,
    )
    if receipt.replayed and renew_secret_on_replay:
        # The first answer (with the only copy of the secret) was lost to the client: a retry or a double
        # click. It gets a new secret; the old one stops working (audited as followup_secret).
        token = svc.db.transaction(lambda s: issue_token(s, receipt.tracking_code, actor="public", at=svc.now()))
        receipt = replace(receipt, followup_token=token)
    if metrics is not None and not receipt.replayed:
        metrics.intake_seconds.observe(time.perf_counter() - started)
    return receipt
