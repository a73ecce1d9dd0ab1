"""The whole learning loop over HTTP on real questions: file, route as a clerk, freeze a slice, retrain, serve.

The national public-service portal's FAQ (dvc_faq): each train question is filed as a citizen's
submission, routed by a clerk to the ministry that answered it, a stratified fifth is frozen as the
evaluation slice (what `triage eval-slice grow` does; there is no HTTP route for it), and a retrain is
started and followed through the API. `/api/v1/route` must then rank the dev questions (other
procedures than any train question) better than cold start did before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import read_rows
from tests.db import BACKENDS, FreshDatabases
from tests.service.conftest import PASSWORD, unique
from training.dataset import grow_eval_slice, text_key
from triage.cases.accounts import create_user
from triage.config import Settings
from triage.nlp.agencies import default_registry
from triage.store.repositories import Submissions

pytestmark = pytest.mark.slow  # files and routes 1,446 questions, then trains on them
JOB_DEADLINE_S = 900
TITLE = "Hỏi về thủ tục hành chính"


@pytest.fixture(scope="module", params=BACKENDS)
def app(
    request: pytest.FixtureRequest, encoder_path: Path, fresh_databases: FreshDatabases, tmp_path_factory: Any
) -> Iterator[TestClient]:
    settings = Settings(
        encoder_path=encoder_path,
        database_url=fresh_databases.new(str(request.param)),
        data_dir=tmp_path_factory.mktemp("learning-e2e"),  # its own MLflow store: cold start first
        registry_model="dvc-faq-e2e",
        escalate_interval_s=0,
        model_poll_s=0,
        intake_rate_per_minute=100_000,
        intake_burst=100_000,
        text_rate_per_minute=100_000,
        text_burst=100_000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _headers(client: TestClient, role: str) -> dict[str, str]:
    name = unique(f"e2e-{role}-")
    with client.app.state.svc.db.session() as s:  # type: ignore[attr-defined]
        create_user(s, username=name, password=PASSWORD, role=role, agency_code="BTC" if role == "handler" else None)
    r = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _questions(path: Path) -> list[tuple[str, str]]:
    """(question, agency code): the `agency` field is the ministry's name under the 2025 structure."""
    reg = default_registry()
    return [(r["text"], reg.resolve(r["agency"]).code) for r in read_rows(path)]


def _top1(client: TestClient, rows: list[tuple[str, str]]) -> tuple[float, str]:
    """Share of questions whose first-ranked agency from /api/v1/route (an official name) is the one that
    answered; and the model version that answered."""
    reg, hits, version = default_registry(), 0, ""
    for text, code in rows:
        r = client.post("/api/v1/route", json={"text": text, "top_k": 1})
        assert r.status_code == 200, r.text
        hits += reg.resolve(r.json()["predictions"][0]["label"]).code == code
        version = r.json()["model_version"]
    return hits / len(rows), version


def _wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    """Poll the job's status until it ends (a real training run)."""
    deadline = time.monotonic() + JOB_DEADLINE_S
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/models/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["state"] in ("succeeded", "failed"):
            return dict(r.json())
        time.sleep(0.5)
    raise AssertionError(f"retrain job {job_id} still running after {JOB_DEADLINE_S} s")


def test_routing_learns_from_clerks_over_http(app: TestClient, shared_data: Path) -> None:
    train = _questions(shared_data / "dvc_faq" / "train.jsonl")
    dev = _questions(shared_data / "dvc_faq" / "dev.jsonl")
    assert len(train) == 1446 and len(dev) == 267
    clerk = _headers(app, "clerk")
    db = app.app.state.svc.db  # type: ignore[attr-defined]

    before, served_before = _top1(app, dev)
    assert "agency:cold-start" in served_before

    # Citizens file the questions; a clerk routes each to the ministry that answered it.
    for i, (text, code) in enumerate(train):
        body = {"kind": "kien_nghi", "submitter_type": "citizen", "title": TITLE, "content": text}
        r = app.post("/api/v1/submissions", json=body, headers={"Idempotency-Key": f"dvc-faq-{i}"})
        assert r.status_code == 201, r.text
        with db.read() as s:
            sub = Submissions(s).by_tracking_code(r.json()["tracking_code"])
            assert sub is not None
            case_id = sub.case_id
        routed = app.post(f"/api/v1/cases/{case_id}/route", json={"agency": code}, headers=clerk)
        assert routed.status_code == 200, routed.text
        assert routed.json()["agency_code"] == code

    with db.session() as s:
        frozen = grow_eval_slice(s, fraction=0.2, actor="e2e-test")
    assert frozen

    admin = _headers(app, "admin")  # the model routes every agency: retraining it is an admin's right
    r = app.post("/api/v1/models/retrain", headers=admin)
    assert r.status_code == 202, r.text
    job = _wait(app, r.json()["id"], admin)
    assert job["state"] == "succeeded", job["error"]
    result = job["result"]
    assert result["version"] == 1 and result["promoted"], result["reasons"]
    # Every distinct question is either trained on or in the slice (a few are asked twice in the FAQ).
    assert result["dataset"]["n_train"] + result["dataset"]["n_eval"] == len({text_key(t) for t, _ in train})
    assert result["metrics"]["top1"] > 0.5

    after, served_after = _top1(app, dev)
    assert "agency:dvc-faq-e2e/v1+router-" in served_after
    print(  # the figures the report quotes (pytest -s shows them)
        f"\ndvc_faq dev top-1 over /api/v1/route: cold start {before:.4f} -> retrained {after:.4f} "
        f"({len(train)} routed questions, slice {result['dataset']['n_eval']}, slice top-1 "
        f"{result['metrics']['top1']}, macro F1 {result['metrics']['macro_f1']})"
    )
    assert after > before
