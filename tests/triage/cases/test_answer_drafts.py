"""Answer drafts: legal references found, sources ranked and cited, scoped to what the account may see."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from triage.cases.accounts import Principal, Role, create_user, principal_of
from triage.cases.answer_drafts import AnsweredCase, AnswerIndex, build_draft, draft_for_case, legal_references
from triage.cases.casework import Casework
from triage.cases.intake import NewSubmission, receive
from triage.errors import NotFound
from triage.store.db import Database

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)


def test_legal_references_are_found_once_each_in_order() -> None:
    text = (
        "Căn cứ Luật Đất đai năm 2013, Nghị định số 43/2014/NĐ-CP và Thông tư 24/2014/TT-BTNMT; "
        "theo Nghị định 43/2014/NĐ-CP (đã dẫn), Quyết định số 1234/QĐ-UBND và Bộ luật Lao động 2019."
    )
    assert legal_references(text) == [
        "Luật Đất đai năm 2013",
        "Nghị định số 43/2014/NĐ-CP",
        "Thông tư số 24/2014/TT-BTNMT",
        "Quyết định số 1234/QĐ-UBND",
        "Bộ luật Lao động 2019",
    ]
    assert legal_references("Xin hỏi thủ tục cấp hộ chiếu năm 2024 thế nào?") == []


def test_draft_cites_the_closest_answered_cases_first() -> None:
    items = [
        AnsweredCase(1, "Cấp hộ chiếu", "Thủ tục cấp hộ chiếu phổ thông?", "Theo Luật số 49/2019/QH14, nộp tờ khai."),
        AnsweredCase(2, "Đăng ký kết hôn", "Đăng ký kết hôn cần gì?", "Theo Nghị định số 123/2015/NĐ-CP."),
        AnsweredCase(3, "Hộ chiếu trẻ em", "Làm hộ chiếu cho trẻ em thế nào?", "Cha mẹ khai tờ khai hộ chiếu."),
    ]
    index = AnswerIndex().fit(items)
    ranked = index.rank("Tôi muốn làm hộ chiếu phổ thông", k=2)
    assert [c.case_id for c, _ in ranked] == [1, 3]
    draft = build_draft("Làm hộ chiếu", ranked)
    assert [s.case_id for s in draft.sources] == [1, 3]
    assert "nộp tờ khai" in draft.body and "#1, #3" in draft.body
    assert draft.legal_references == ["Luật số 49/2019/QH14"]
    assert [c.case_id for c, _ in index.rank("hộ chiếu", k=3, exclude=[1])] == [3, 2]
    assert build_draft("x", []).body == ""


def test_draft_for_a_case_uses_only_answered_cases_the_account_sees(db: Database) -> None:
    with db.session() as s:
        admin = principal_of(create_user(s, username="draft-admin", password="mat-khau-du-dai-1", role="admin"))
        btc = principal_of(
            create_user(s, username="draft-h-btc", password="mat-khau-du-dai-1", role="handler", agency_code="BTC")
        )
        byt = principal_of(
            create_user(s, username="draft-h-byt", password="mat-khau-du-dai-1", role="handler", agency_code="BYT")
        )

    def case(title: str, content: str, agency: str, answer: str | None) -> int:
        cid = receive(
            db, NewSubmission(kind="kien_nghi", submitter_type="citizen", title=title, content=content), now=T0
        ).case_id
        handler = btc if agency == "BTC" else byt
        with db.session() as s:
            w = Casework(s, admin, now=T0)
            w.route(cid, agency=agency)
            w.assign(cid, assignee=handler.username)
        if answer is not None:
            with db.session() as s:
                w = Casework(s, handler, now=T0)
                w.start(cid)
                w.respond(cid, body=answer)
        return cid

    tax = case(
        "Hoàn thuế chậm",
        "Hồ sơ hoàn thuế thu nhập cá nhân chậm giải quyết.",
        "BTC",
        "Theo Thông tư số 80/2021/TT-BTC, hoàn trong 6 ngày.",
    )
    case("Khám bệnh", "Hoàn thuế thu nhập cá nhân khi khám bệnh?", "BYT", "Trả lời của Bộ Y tế.")
    case("Chưa trả lời", "Hoàn thuế thu nhập cá nhân chưa xong.", "BTC", None)
    target = case("Hỏi hoàn thuế", "Khi nào được hoàn thuế thu nhập cá nhân?", "BTC", None)
    with db.read() as s:
        draft = draft_for_case(s, btc, target)
        assert [src.case_id for src in draft.sources] == [tax]  # answered, and of its own agency only
        assert draft.legal_references == ["Thông tư số 80/2021/TT-BTC"]
        assert "6 ngày" in draft.body
        with pytest.raises(NotFound):
            draft_for_case(s, byt, target)
        assert len(draft_for_case(s, Principal(None, "x", Role.ADMIN), target).sources) == 2
    # The fitted index is kept between views and refitted when an answer is added; a case never cites itself.
    more = case("Hoàn thuế lần hai", "Hoàn thuế thu nhập cá nhân lần hai.", "BTC", "Hoàn theo Luật Quản lý thuế 2019.")
    with db.read() as s:
        again = draft_for_case(s, btc, target)
        own = draft_for_case(s, btc, tax)
    assert {src.case_id for src in again.sources} == {tax, more}
    assert [src.case_id for src in own.sources] == [more]
