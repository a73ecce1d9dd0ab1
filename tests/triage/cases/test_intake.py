"""Receiving submissions: stored as sent, idempotent under concurrent retries, safe when a model fails."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from triage.cases.intake import (
    RETRY_ATTEMPTS,
    RETRY_WAIT,
    NewSubmission,
    Receipt,
    new_tracking_code,
    receive,
    retriage_missing,
)
from triage.cases.pipeline import Pipeline
from triage.errors import IdempotencyKeyReused, InvalidInput
from triage.nlp.agency_router import AgencyRouter
from triage.store.case_index import CaseIndex
from triage.store.db import Database
from triage.store.tables import Case, Event, Submission

NEW = NewSubmission(
    kind="kien_nghi",
    submitter_type="business",
    title="Đề nghị  đơn giản hóa thủ tục",
    content="Doanh nghiệp kiến nghị rút ngắn thời gian cấp giấy phép xây dựng tại Hải Phòng.",
    province="Hải Phòng",
    contact_name="Công ty TNHH ABC",
    contact_email="lienhe@abc.vn",
)


@pytest.fixture(scope="module")
def pipeline(embedder: Any, db: Database) -> Pipeline:
    return Pipeline(embedder=embedder, agency_router=AgencyRouter(embedder=embedder).fit(), similar=CaseIndex(db))


def test_stored_exactly_as_sent_with_a_suggestion(db: Database, pipeline: Pipeline) -> None:
    receipt = receive(db, NEW, pipeline=pipeline)
    with db.read() as s:
        sub = s.scalar(select(Submission).where(Submission.tracking_code == receipt.tracking_code))
        assert sub is not None
        assert sub.title_raw == NEW.title and sub.title == "Đề nghị đơn giản hóa thủ tục"
        assert sub.content_raw == NEW.content and sub.province_code == "P-HP"
        assert sub.contact_email == "lienhe@abc.vn" and sub.embedding is not None
        assert np.frombuffer(sub.embedding, dtype=np.float32).shape == (pipeline.embedder.dimension,)
        case = s.get(Case, receipt.case_id)
        assert case is not None and case.state == "new" and case.suggestion is not None
        assert case.answer_due == receipt.answer_due and case.model_version == pipeline.model_version
        # Building permits in Hải Phòng: an everyday matter, not one of Resolution 57's task groups.
        assert case.programme_field == "other" == case.suggestion["programme_fields"][0]["code"]


def test_concurrent_retries_create_one_submission(db: Database) -> None:
    receipts: list[Receipt] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            receipts.append(receive(db, NEW, idempotency_key="concurrent-key-1"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({(r.tracking_code, r.case_id, r.answer_due) for r in receipts}) == 1
    assert sum(not r.replayed for r in receipts) == 1
    with db.read() as s:
        n = s.scalar(
            select(func.count()).select_from(Submission).where(Submission.idempotency_key == "concurrent-key-1")
        )
        assert n == 1


def test_key_reused_for_another_body(db: Database) -> None:
    receive(db, NEW, idempotency_key="reused-key-2")
    changed = NewSubmission(**{**NEW.__dict__, "content": NEW.content + " Thêm một câu."})
    with pytest.raises(IdempotencyKeyReused):
        receive(db, changed, idempotency_key="reused-key-2")


def test_model_failure_keeps_the_submission_and_the_job_triages_it_later(db: Database, pipeline: Pipeline) -> None:
    class Broken:
        model_id, dimension = "broken", 384

        def encode(self, texts: list[str], **kw: Any) -> np.ndarray:
            raise RuntimeError("model crashed")

    broken = Pipeline(embedder=Broken(), agency_router=pipeline.agency_router)  # type: ignore[arg-type]
    receipt = receive(db, NEW, pipeline=broken)
    with db.read() as s:
        case = s.get(Case, receipt.case_id)
        assert case is not None and case.state == "new" and case.suggestion is None
    assert retriage_missing(db, pipeline) >= 1
    with db.read() as s:
        case = s.get(Case, receipt.case_id)
        assert case is not None and case.suggestion is not None
        assert case.suggestion["agencies"] and case.model_version == pipeline.model_version
        assert case.programme_field == case.suggestion["programme_fields"][0]["code"]
        assert case.programme_field in pipeline.programme_taxonomy.codes
        actions = list(s.scalars(select(Event.action).where(Event.case_id == receipt.case_id).order_by(Event.seq)))
        assert actions == ["submit", "suggest"]
        suggest = s.scalar(select(Event).where(Event.case_id == receipt.case_id, Event.action == "suggest"))
        assert suggest is not None and suggest.after is not None
        assert suggest.after["suggested_programme_field"] == case.programme_field
    assert retriage_missing(db, pipeline) == 0


def test_a_case_that_always_fails_triage_backs_off_gives_up_and_starves_nothing(
    db: Database, pipeline: Pipeline
) -> None:
    class Broken:
        model_id, dimension = "broken", 384

        def encode(self, texts: list[str], **kw: Any) -> np.ndarray:
            raise RuntimeError("model crashed")

    broken = Pipeline(embedder=Broken(), agency_router=pipeline.agency_router)  # type: ignore[arg-type]
    retriage_missing(db, pipeline)  # earlier tests' leftovers out of the way
    stuck = receive(db, NEW, pipeline=broken).case_id

    def failures() -> int:
        with db.read() as s:
            return int(
                s.scalar(select(func.count()).where(Event.case_id == stuck, Event.action == "triage_failed")) or 0
            )

    t0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    assert retriage_missing(db, broken, now=t0) == 0 and failures() == 1
    assert retriage_missing(db, broken, now=t0 + timedelta(minutes=1)) == 0 and failures() == 1  # waits
    # A later case whose triage failed too is tried first, though its id is higher and the batch holds one.
    fresh = receive(db, NEW, pipeline=broken).case_id
    assert retriage_missing(db, pipeline, limit=1, now=t0 + timedelta(minutes=1)) == 1
    with db.read() as s:
        done, waiting = s.get(Case, fresh), s.get(Case, stuck)
        assert done is not None and done.suggestion is not None
        assert waiting is not None and waiting.suggestion is None
    moment = t0
    for expected in range(2, RETRY_ATTEMPTS + 1):
        moment += RETRY_WAIT * 2 ** (expected - 2)
        assert retriage_missing(db, broken, now=moment) == 0 and failures() == expected
    assert retriage_missing(db, broken, now=moment + timedelta(days=365)) == 0
    assert failures() == RETRY_ATTEMPTS  # given up: a clerk triages it by hand


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"kind": "to_cao"}, "kind"),
        ({"submitter_type": "alien"}, "submitter_type"),
        ({"content": "\u200b \n"}, "content is empty"),
        ({"province": "Atlantis"}, "province"),
    ],
)
def test_invalid_submissions_are_refused(db: Database, change: dict[str, str], error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        receive(db, NewSubmission(**{**NEW.__dict__, **change}))


def test_tracking_codes_are_random_and_unambiguous() -> None:
    codes = {new_tracking_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert not any(set(c[5:]) & set("ILOU") for c in codes)
