"""Auto-routing at intake, the uncertainty queue and the drift report, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from triage.cases.accounts import create_user
from triage.cases.active_learning import uncertain_cases
from triage.cases.drift import drift_report
from triage.cases.intake import NewSubmission, receive
from triage.cases.pipeline import Pipeline
from triage.nlp.agency_router import AgencyRouter
from triage.store.db import Database
from triage.store.tables import Case, Event, ReviewedLabel

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
TAX = NewSubmission(
    kind="phan_anh",
    submitter_type="citizen",
    title="Hoàn thuế thu nhập cá nhân",
    content="Hồ sơ hoàn thuế thu nhập cá nhân của tôi nộp tại cơ quan thuế đã quá hạn mà chưa được giải quyết.",
)


@pytest.fixture(scope="module")
def pipeline(embedder: Any) -> Pipeline:
    return Pipeline(embedder=embedder, agency_router=AgencyRouter(embedder=embedder).fit())


def test_auto_route_only_above_the_threshold_and_only_when_enabled(db: Database, pipeline: Pipeline) -> None:
    models = pipeline.models
    try:
        pipeline.swap_models(models.agency_router, label="test/v7", auto_threshold=0.0)
        off = receive(db, TAX, pipeline=pipeline, auto_route=False)
        on = receive(db, TAX, pipeline=pipeline, auto_route=True)
        pipeline.swap_models(models.agency_router, label="test/v7", auto_threshold=1.01)
        below = receive(db, TAX, pipeline=pipeline, auto_route=True)
    finally:
        pipeline.models = models
    with db.read() as s:
        cases = {r.case_id: s.get(Case, r.case_id) for r in (off, on, below)}
        assert cases[off.case_id].state == "new" and cases[below.case_id].state == "new"  # type: ignore[union-attr]
        routed = cases[on.case_id]
        assert routed is not None and routed.state == "triaged"
        assert routed.agency_code == routed.suggestion["agencies"][0]["code"]  # type: ignore[index]
        assert "test/v7" in str(routed.model_version)
        event = s.scalars(select(Event).where(Event.case_id == on.case_id, Event.action == "triage")).one()
        assert event.actor == "system" and event.after["auto"] is True and event.after["threshold"] == 0.0  # type: ignore[index]
        assert event.model_version == routed.model_version
        submit = s.scalars(select(Event).where(Event.case_id == on.case_id, Event.action == "submit")).one()
        top = routed.suggestion["agencies"][0]  # type: ignore[index]
        assert submit.after["suggested_scores"][0] == top["score"] == event.after["score"]  # type: ignore[index]
        # Not a person's decision: no reviewed label comes from it.
        assert s.scalars(select(ReviewedLabel).where(ReviewedLabel.case_id == on.case_id)).first() is None


def test_uncertain_queue_orders_by_margin_or_entropy(db: Database) -> None:
    def case(scores: list[float]) -> int:
        sug = {
            "agencies": [
                {"code": c, "name": c, "score": sc} for c, sc in zip(["BTC", "BYT", "BXD"], scores, strict=True)
            ]
        }
        c = Case(state="new", kind="phan_anh", received_at=NOW, suggestion=sug, model_version="m", updated_at=NOW)
        s.add(c)
        s.flush()
        return int(c.id)

    with db.session() as s:
        sure, torn, spread = case([0.95, 0.03, 0.01]), case([0.45, 0.44, 0.05]), case([0.3, 0.2, 0.2])
    with db.read() as s:
        by_margin = [u.case_id for u in uncertain_cases(s, by="margin", limit=1000)]
        by_entropy = [u.case_id for u in uncertain_cases(s, by="entropy", limit=1000)]
    mine = {sure, torn, spread}
    assert [c for c in by_margin if c in mine] == [torn, spread, sure]
    assert [c for c in by_entropy if c in mine] == [spread, torn, sure]


def test_drift_report_sees_a_label_shift_and_a_confidence_drop(empty_db: Database) -> None:
    with empty_db.session() as s:
        clerk = create_user(s, username="clerk-drift", password="mật-khẩu-đủ-dài-123", role="clerk").id

        def label(code: str, at: datetime, score: float) -> None:
            sug = {"agencies": [{"code": code, "name": code, "score": score}]}
            c = Case(state="triaged", kind="phan_anh", agency_code=code, received_at=at, suggestion=sug, updated_at=at)
            s.add(c)
            s.flush()
            s.add(
                ReviewedLabel(
                    case_id=c.id, text="t", agency_code=code, kind="phan_anh", confirmed=True, reviewer_id=clerk, at=at
                )
            )

        for day in range(1, 50):  # reference: mostly tax, confident
            label("BTC" if day % 5 else "BYT", NOW - timedelta(days=7 + day / 7), 0.9)
        for i in range(20):  # the latest week: mostly health, less sure
            label("BYT" if i % 5 else "BTC", NOW - timedelta(hours=6 * i + 1), 0.6)
    with empty_db.read() as s:
        report = drift_report(s, now=NOW, recent_weeks=1, reference_weeks=8)
    assert report["labels"]["recent_n"] == 20 and report["labels"]["reference_n"] == 49
    assert report["labels"]["shifted"] and report["labels"]["psi"] > 0.25
    assert report["labels"]["largest_moves"][0]["agency"] in {"BTC", "BYT"}
    assert report["confidence"]["drop"] == pytest.approx(0.3) and report["confidence"]["dropped"]
    assert sum(w["labels"] for w in report["weeks"]) == 69
