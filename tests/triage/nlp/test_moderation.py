"""Moderation flags: a real offensive comment is flagged, a real civic text is not; the flag reaches the
suggestion and the audit trail at intake; a clerk's decision is audited and nothing is ever deleted."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.conftest import read_rows
from training.moderation import held_out, load_data
from triage.cases.accounts import Principal, Role
from triage.cases.casework import Casework
from triage.cases.intake import NewSubmission, receive
from triage.cases.pipeline import Pipeline
from triage.config import Settings
from triage.errors import Conflict, InvalidInput, ModelMissing, NotFitted, NotFound, PermissionDenied
from triage.nlp.agency_router import AgencyRouter
from triage.nlp.moderation import ModerationResult, Moderator, load_moderator
from triage.store.db import Database
from triage.store.repositories import CaseFilter, Cases
from triage.store.tables import Case, Event, Submission

# Real ViHSD dev comments (never in the training slice: it comes from train.jsonl).
OFFENSIVE = [
    "chậm cái địt mẹ m",
    "@Ngoc Quynh Nhu Nguyen Nó góp ý thì có ngon vào thẳng Facebook Linda mà góp, đm góp trên đây cho cha mẹ "
    "nó đọc hả gì. Thứ ngu mà đéo biết nhận xét",
]
CLERK = Principal(user_id=None, username="clerk-mod", role=Role.CLERK)


def civic_texts(shared_data: Path) -> list[str]:
    """Real civic texts kept out of training: held-out Zalo legal questions and UIT-VSFC dev feedback."""
    zalo = [r["text"] for r in read_rows(shared_data / "zalo_legal" / "unlabelled.jsonl") if held_out(r["text"])]
    vsfc = [r["text"] for r in read_rows(shared_data / "uit_vsfc" / "dev.jsonl", 200) if r["sentiment"] == "negative"]
    return zalo[:20] + vsfc[:20]


def test_offensive_comment_flagged_and_civic_text_not(small_moderator: Moderator, shared_data: Path) -> None:
    flagged = small_moderator.moderate(OFFENSIVE)
    assert all(r.flagged and "abuse" in r.reasons for r in flagged), flagged
    assert all(r.abuse >= 0.5 and r.abuse == pytest.approx(r.offensive + r.hate, abs=2e-4) for r in flagged)
    civic = civic_texts(shared_data)
    assert len(civic) == 40
    results = small_moderator.moderate(civic)
    false_flags = [t for t, r in zip(civic, results, strict=True) if r.flagged]
    # <= 5 % on this small slice (the full moderator: 0.13 % of 1,482 held-out civic texts).
    assert len(false_flags) <= 2, false_flags
    complaint = "giảng viên nên giao bài tập nhiều hơn , chia nhóm để làm bài tập , giảng kỹ những vấn đề trọng tâm"
    assert not small_moderator.moderate([complaint])[0].flagged


def test_spam_head_flags_real_spam(small_moderator: Moderator, shared_data: Path) -> None:
    dev = read_rows(shared_data / "vispam" / "dev.jsonl", 400)
    spam = small_moderator.scores([r["text"] for r in dev])["spam"]
    gold = np.asarray([r["spam"] for r in dev]) == 1
    assert spam[gold].mean() > spam[~gold].mean() + 0.2  # the head separates spam from honest reviews


def test_thresholds_decide_the_flag(small_moderator: Moderator) -> None:
    strict = Moderator(abuse_threshold=1.0, spam_threshold=1.0)
    strict.abuse_, strict.spam_ = small_moderator.abuse_, small_moderator.spam_
    assert not strict.predict(OFFENSIVE).any()
    assert small_moderator.predict(OFFENSIVE).all()
    with pytest.raises(InvalidInput, match="abuse_threshold"):
        Moderator(abuse_threshold=0.0)


def test_save_load_round_trip(small_moderator: Moderator, tmp_path: Path) -> None:
    texts = [*OFFENSIVE, "Thủ tục cấp lại giấy phép lái xe bị mất như thế nào?"]
    small_moderator.save(tmp_path / "mod", metrics={"note": "test"})
    manifest = json.loads((tmp_path / "mod" / "manifest.json").read_text())
    assert manifest["kind"] == "moderator" and manifest["version"] == small_moderator.version
    loaded = Moderator.load(tmp_path / "mod")
    before, after = small_moderator.scores(texts), loaded.scores(texts)
    for key in ("abuse", "spam"):
        np.testing.assert_allclose(before[key], after[key], rtol=1e-6)
    assert [r.to_dict() for r in loaded.moderate(texts)] == [r.to_dict() for r in small_moderator.moderate(texts)]
    strict = Moderator.load(tmp_path / "mod", abuse_threshold=0.99)
    assert strict.abuse_threshold == 0.99
    # TF-IDF heads are loaded once per process and folder version: apps share them, thresholds stay apart.
    assert strict.abuse_ is loaded.abuse_ and strict.spam_ is loaded.spam_
    assert loaded.abuse_threshold == small_moderator.abuse_threshold
    small_moderator.save(tmp_path / "mod", metrics={"note": "saved again"})  # a new version is read anew
    assert Moderator.load(tmp_path / "mod").abuse_ is not loaded.abuse_


def test_bad_inputs_and_missing_models(tmp_path: Path) -> None:
    with pytest.raises(NotFitted):
        Moderator().moderate(["x"])
    with pytest.raises(InvalidInput, match="abuse labels"):
        Moderator().fit(["a", "b"], ["clean", "rude"], ["a", "b"], [0, 1])
    with pytest.raises(InvalidInput, match="spam labels"):
        Moderator().fit(["a", "b"], ["clean", "hate"], ["a", "b"], [0, 2])
    with pytest.raises(ModelMissing, match="moderation train"):
        Moderator.load(tmp_path / "nothing")


def test_product_runs_without_a_moderator_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="triage.nlp.moderation"):
        assert load_moderator(Settings(model_dir=tmp_path)) is None
    assert "NOT screened" in caplog.text
    assert load_moderator(Settings(model_dir=tmp_path, moderation_enabled=False)) is None


def test_load_data_keeps_civic_held_out_apart(shared_data: Path) -> None:
    data = load_data(shared_data, limit=400)
    assert data.civic_train and data.civic_held_out
    assert not set(data.civic_train) & set(data.civic_held_out)
    assert all(held_out(t) for t in data.civic_held_out)
    assert data.abuse_labels.count("clean") >= len(data.civic_train)


# ---- the pipeline, intake, casework and the audit trail (SQLite and PostgreSQL) --------------------


@pytest.fixture(scope="module")
def pipeline(embedder: Any, small_moderator: Moderator) -> Pipeline:
    return Pipeline(embedder=embedder, agency_router=AgencyRouter(embedder=embedder).fit(), moderator=small_moderator)


def submission(content: str, title: str = "Góp ý") -> NewSubmission:
    return NewSubmission(kind="phan_anh", submitter_type="citizen", title=title, content=content)


def test_flag_stored_in_suggestion_and_submit_event(db: Database, pipeline: Pipeline) -> None:
    rude = receive(db, submission(OFFENSIVE[1]), pipeline=pipeline)
    fine = receive(
        db, submission("Đề nghị sửa đường Nguyễn Trãi bị ngập mỗi khi mưa lớn.", "Đường ngập"), pipeline=pipeline
    )
    with db.read() as s:
        for receipt, flagged in ((rude, True), (fine, False)):
            case = s.get(Case, receipt.case_id)
            assert case is not None and case.suggestion is not None
            mod = case.suggestion["moderation"]
            assert mod["flagged"] is flagged and mod["model_flagged"] is flagged and mod["decision"] is None
            assert mod["model"] == pipeline.moderator.version  # type: ignore[union-attr]
            event = s.scalar(select(Event).where(Event.case_id == receipt.case_id, Event.action == "submit"))
            assert event is not None and event.after is not None
            assert event.after["moderation"]["flagged"] is flagged
            assert event.after["moderation"]["abuse"] == mod["abuse"]
        found, _ = Cases(s).find(CaseFilter(flagged=True), case_date(s, rude.case_id), limit=500)
        unflagged, _ = Cases(s).find(CaseFilter(flagged=False), case_date(s, rude.case_id), limit=500)
        assert rude.case_id in {c.id for c in found} and fine.case_id not in {c.id for c in found}
        assert fine.case_id in {c.id for c in unflagged} and rude.case_id not in {c.id for c in unflagged}


def case_date(s: Any, case_id: int) -> Any:
    case = s.get(Case, case_id)
    return case.received_at.date()


def test_pipeline_without_moderator_leaves_no_flag(embedder: Any) -> None:
    from datetime import UTC, datetime

    from triage.cases.pipeline import SubmissionText

    p = Pipeline(embedder=embedder, agency_router=AgencyRouter(embedder=embedder).fit())
    sug = p.triage(SubmissionText("Chửi", OFFENSIVE[0], "phan_anh", datetime(2026, 3, 2, tzinfo=UTC)))
    assert sug.moderation is None and sug.to_dict()["moderation"] is None


def test_pipeline_moderation_is_a_frozen_result_stored_as_before(pipeline: Pipeline) -> None:
    """The suggestion holds a typed ModerationResult; the case stores the same JSON as ever."""
    from dataclasses import FrozenInstanceError
    from datetime import UTC, datetime

    from triage.cases.pipeline import SubmissionText

    sug = pipeline.triage(SubmissionText("Góp ý", OFFENSIVE[1], "phan_anh", datetime(2026, 3, 2, tzinfo=UTC)))
    result = sug.moderation
    assert isinstance(result, ModerationResult) and result.flagged and "abuse" in result.reasons
    with pytest.raises(FrozenInstanceError):
        result.flagged = False  # type: ignore[misc]
    stored = sug.to_dict()["moderation"]
    assert list(stored) == [
        "flagged", "reasons", "abuse", "offensive", "hate", "spam", "abuse_threshold", "spam_threshold", "model",
        "model_flagged", "decision",
    ]  # fmt: skip
    assert stored["reasons"] == list(result.reasons) and stored["abuse"] == result.abuse
    assert stored["model_flagged"] is True and stored["decision"] is None and stored["model"] == result.model


def test_clerk_dismisses_then_confirms_and_every_decision_is_audited(db: Database, pipeline: Pipeline) -> None:
    receipt = receive(db, submission(OFFENSIVE[0]), pipeline=pipeline)
    cid = receipt.case_id
    with db.session() as s:
        Casework(s, CLERK).moderate(cid, decision="dismiss", note="  người gửi dùng từ lóng, vẫn xử lý  ")
    with db.session() as s:
        case = s.get(Case, cid)
        assert case is not None and case.suggestion is not None
        mod = case.suggestion["moderation"]
        assert mod["flagged"] is False and mod["model_flagged"] is True and mod["decision"] == "dismiss"
        assert mod["decided_by"] == "clerk-mod" and mod["note"] == "người gửi dùng từ lóng, vẫn xử lý"
        assert case.suggestion["agencies"]  # the rest of the suggestion is untouched
        with pytest.raises(Conflict, match="no moderation flag"):
            Casework(s, CLERK).moderate(cid, decision="dismiss")
    with db.session() as s:
        Casework(s, CLERK).moderate(cid, decision="confirm")
    with db.read() as s:
        events = list(
            s.scalars(select(Event).where(Event.case_id == cid, Event.action == "moderate").order_by(Event.seq))
        )
        assert [e.after["decision"] for e in events] == ["dismiss", "confirm"]  # type: ignore[index]
        assert events[0].before["flagged"] is True and events[0].after["flagged"] is False  # type: ignore[index]
        assert events[1].before["flagged"] is False and events[1].after["flagged"] is True  # type: ignore[index]
        assert events[0].after["note"] == "người gửi dùng từ lóng, vẫn xử lý"  # type: ignore[index]
        # Nothing deleted or hidden: the case and its submission are all still there, state unchanged.
        case = s.get(Case, cid)
        assert case is not None and case.state == "new"
        assert s.scalar(select(func.count()).select_from(Submission).where(Submission.case_id == cid)) == 1


def test_confirm_raises_a_flag_the_model_missed(db: Database, pipeline: Pipeline) -> None:
    receipt = receive(db, submission("Đề nghị cấp lại sổ đỏ bị thất lạc khi chuyển nhà.", "Sổ đỏ"), pipeline=pipeline)
    with db.session() as s:
        Casework(s, CLERK).moderate(receipt.case_id, decision="confirm", note="quảng cáo trá hình")
    with db.read() as s:
        case = s.get(Case, receipt.case_id)
        assert case is not None and case.suggestion is not None
        mod = case.suggestion["moderation"]
        assert mod["flagged"] is True and mod["model_flagged"] is False and mod["decision"] == "confirm"


@pytest.mark.parametrize("role", [Role.HANDLER, Role.ANALYST])
def test_handler_and_analyst_may_not_moderate(db: Database, pipeline: Pipeline, role: Role) -> None:
    receipt = receive(db, submission(OFFENSIVE[0]), pipeline=pipeline)
    who = Principal(
        user_id=None, username=f"{role.value}-mod", role=role, agency_code="BTC" if role is Role.HANDLER else None
    )
    # A handler does not even see a case that is not its agency's (NEW: no agency yet).
    with db.session() as s, pytest.raises(NotFound if role is Role.HANDLER else PermissionDenied):
        Casework(s, who).moderate(receipt.case_id, decision="dismiss")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.case_id == receipt.case_id)) == 1


def test_bad_decision_and_unscreened_case(db: Database) -> None:
    receipt = receive(db, submission("Hồ sơ chưa được phân loại tự động."))  # no pipeline: no suggestion
    with db.session() as s:
        with pytest.raises(InvalidInput, match="decision"):
            Casework(s, CLERK).moderate(receipt.case_id, decision="delete")
        with pytest.raises(Conflict, match="not been screened"):
            Casework(s, CLERK).moderate(receipt.case_id, decision="confirm")
