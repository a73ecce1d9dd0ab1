"""Agency routing with zero labels, with labels, and with a named province."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import read_rows
from triage.nlp.agency_router import AgencyRouter, ColdStartRouter
from triage.nlp.procedure_router import ProcedureRouter
from triage.nlp.router import Router
from triage.nlp.text import normalize


@pytest.fixture(scope="module")
def cold(embedder: Any) -> AgencyRouter:
    return AgencyRouter(embedder=embedder).fit()


@pytest.mark.parametrize(
    ("text", "agency"),
    [
        ("Bệnh viện huyện thiếu thuốc, bệnh nhân bảo hiểm y tế phải tự mua thuốc ngoài", "Bộ Y tế"),
        ("Xin hỏi thủ tục hoàn thuế thu nhập cá nhân khi quyết toán năm", "Bộ Tài chính"),
        ("Đề nghị tăng học bổng cho sinh viên sư phạm và giảm áp lực thi tốt nghiệp THPT", "Bộ Giáo dục và Đào tạo"),
        ("Doanh nghiệp khởi nghiệp sáng tạo cần hỗ trợ đăng ký sáng chế và sở hữu trí tuệ", "Bộ Khoa học và Công nghệ"),
    ],
)
def test_cold_start_suggests_the_right_ministry(cold: AgencyRouter, text: str, agency: str) -> None:
    top3 = [p.label for p in cold.predict_top_k([normalize(text)], k=3)[0]]
    assert agency in top3


def test_local_matter_gets_its_province(cold: AgencyRouter) -> None:
    text = "Đoạn đường tỉnh lộ qua thị xã Bến Cát, Bình Dương bị ngập sâu mỗi khi mưa"
    labels = [p.label for p in cold.predict_top_k([text], k=3)[0]]
    assert "TP. Hồ Chí Minh" in labels  # Bình Dương merged into TP. Hồ Chí Minh in July 2025
    no_place = [p.label for p in cold.predict_top_k(["Đường bị ngập sâu mỗi khi mưa"], k=3)[0]]
    assert "TP. Hồ Chí Minh" not in no_place


def test_probabilities_cover_every_agency(cold: AgencyRouter) -> None:
    proba = cold.predict_proba(["Tôi muốn hỏi về lương hưu"])
    assert proba.shape == (1, len(cold.classes_)) and np.isclose(proba.sum(), 1.0)
    # Ranked by top-level body: units (Cục Thuế, BHXH) count for their ministry.
    assert len(cold.classes_) == 53 and "BHXH" not in cold.classes_ and "BTC" in cold.classes_


@pytest.mark.slow
def test_labels_improve_on_cold_start(embedder: Any, shared_data: Path) -> None:
    rows = read_rows(shared_data / "zalo_legal" / "agency_train.jsonl")
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(rows))
    train, test = [rows[i] for i in idx[:400]], [rows[i] for i in idx[400:]]
    tx, ty = [normalize(r["text"]) for r in train], [r["agency"] for r in train]
    sx = [normalize(r["text"]) for r in test]
    cold = AgencyRouter(embedder=embedder).fit()
    trained = AgencyRouter(embedder=embedder).fit(tx, ty)

    def top1(router: AgencyRouter) -> float:
        preds = [p[0].label for p in router.predict_top_k(sx, k=1)]
        gold = [cold.registry_.resolve(r["agency"]).name for r in test]
        return float(np.mean([p == g for p, g in zip(preds, gold, strict=True)]))

    assert top1(trained) > top1(cold) + 0.15
    assert top1(cold) > 0.25  # 20 central bodies: chance is 0.05


def test_fit_trains_a_clone_of_the_given_router(embedder: Any, shared_data: Path) -> None:
    rows = read_rows(shared_data / "zalo_legal" / "agency_train.jsonl", 150)
    given = Router(embedder=embedder, C=1.0, embedding_weight=1.0)
    router = AgencyRouter(embedder=embedder, supervised=given).fit(
        [normalize(r["text"]) for r in rows], [r["agency"] for r in rows]
    )
    assert not hasattr(given, "classes_")  # the caller's estimator is not fitted behind its back
    fitted = router.supervised_
    assert fitted is not None and fitted is not given and (fitted.C, fitted.embedding_weight) == (1.0, 1.0)
    assert fitted.embedder is embedder  # the encoder is shared, not deep-copied
    assert len(fitted.classes_) >= 2 and set(fitted.classes_) <= set(router.classes_)


def test_explicit_mention_helps(embedder: Any) -> None:
    base = ColdStartRouter(embedder=embedder, mention_bonus=0.0).fit()
    with_mention = ColdStartRouter(embedder=embedder).fit()
    text = ["Kiến nghị gửi Bộ GTVT về trạm thu phí BOT"]
    col = list(base.classes_).index("BXD")
    assert with_mention.predict_proba(text)[0, col] > base.predict_proba(text)[0, col]


@pytest.mark.parametrize(
    ("text", "ministry", "province"),
    [
        (
            "Bà Lê Kim Tuyền (TPHCM) có một mảnh đất được cấp giấy chứng nhận quyền sử dụng đất năm 2005, "
            "nay muốn tách thửa để tặng cho con thì cần điều kiện gì?",
            "BNNMT",
            "P-HCM",
        ),
        (
            "Ông Nguyễn Văn Hùng (Sơn La) hỏi: người lao động nghỉ việc thì được hưởng trợ cấp thất nghiệp "
            "trong bao lâu theo quy định?",
            "BNV",
            "P-SL",
        ),
        (
            "Anh Trần Minh (Hưng Yên) hỏi thủ tục đổi giấy phép lái xe hạng B2 sang hạng mới như thế nào?",
            "BCA",
            "P-HY",
        ),
    ],
)
def test_residence_in_brackets_goes_to_the_ministry(
    cold: AgencyRouter, text: str, ministry: str, province: str
) -> None:
    ranked = cold.suggest([text], k=3)[0]
    assert ranked[0].code == ministry, ranked
    assert province not in [r.code for r in ranked[:1]]
    decision = cold.locality(text)
    assert not decision.local and province in [p.code for p in decision.residence]


def test_a_local_matter_names_its_province_first_among_places(cold: AgencyRouter) -> None:
    text = "Tuyến đường liên xã ở huyện Ba Vì, Hà Nội bị sạt lở và ngập nặng mỗi khi mưa, đề nghị sửa chữa gấp"
    decision = cold.locality(text)
    assert decision.local and [p.code for p in decision.provinces] == ["P-HN"]
    assert "P-HN" in [r.code for r in cold.suggest([text], k=3)[0]]
    # route() gives the suggestions and the decision that shaped them, taken once.
    routing = cold.route([text], k=3)[0]
    assert routing.locality == decision and routing.agencies == cold.suggest([text], k=3)[0]


def test_suggestion_names_the_catalogue_procedure_and_the_unit(cold: AgencyRouter) -> None:
    ranked = cold.suggest(["Tôi muốn đăng ký thường trú cho con mới sinh thì làm thế nào?"], k=3)[0]
    assert ranked[0].code == "BCA"
    assert ranked[0].reason is not None and ranked[0].reason.startswith("Thủ tục: ")
    assert "trú" in ranked[0].reason
    taxed = cold.suggest(["Cục Thuế chậm hoàn thuế thu nhập cá nhân cho tôi đã ba tháng"], k=3)[0]
    assert taxed[0].code == "BTC" and taxed[0].unit == "BTC-THUE"


def test_a_label_for_a_unit_counts_for_its_ministry(embedder: Any) -> None:
    texts = ["Lương hưu của tôi bị chậm chi trả", "Hoàn thuế thu nhập cá nhân bị chậm", "Cấp lại hộ chiếu bị mất"] * 4
    labels = ["BHXH", "BTC-THUE", "BCA"] * 4
    router = AgencyRouter(embedder=embedder).fit(texts, labels)
    ranked = router.suggest(["Lương hưu tháng này chưa được trả"], k=2)[0]
    assert ranked[0].code == "BTC"
    assert set(router.classes_) >= {"BTC", "BCA"} and "BHXH" not in router.classes_


def test_without_the_catalogue_the_router_still_ranks(embedder: Any) -> None:
    plain = AgencyRouter(embedder=embedder, use_catalogue=False).fit()
    ranked = plain.suggest(["Xin hỏi thủ tục cấp hộ chiếu phổ thông"], k=3)[0]
    assert all(r.reason is None for r in ranked) and len(ranked) == 3


def test_descriptions_are_centred_on_the_catalogue(cold: AgencyRouter) -> None:
    # The broad description of Văn phòng Chính phủ is near any procedure name; once centred on the
    # catalogue's names, no body wins them by breadth alone.
    desc = cold.cold_
    assert desc.hub_ is not None and desc.hub_.shape == (len(desc.classes_),)
    names = [p.name for p in cold.catalogue_.procedures_[::25]]  # type: ignore[union-attr]
    emb = cold.catalogue_.doc_embeddings_[::25]  # type: ignore[union-attr, index]
    centred = desc.similarity(names, emb)
    raw = centred + desc.hub_
    vpcp = list(desc.classes_).index("VPCP")
    assert (raw.argmax(axis=1) == vpcp).mean() > (centred.argmax(axis=1) == vpcp).mean()


def test_an_abbreviation_reaches_the_procedures_it_stands_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """"PCCC" is how people write it; the catalogue says "phòng cháy, chữa cháy" (Bộ Công an's)."""
    import triage.nlp.procedure_router as procedure_router

    text = ["Điều kiện để được cấp chứng chỉ hành nghề tư vấn giám sát về PCCC là gì?"]
    lexical = ProcedureRouter(embedder=None).fit()
    assert str(lexical.classes_[lexical.predict_proba(text)[0].argmax()]) == "BCA"
    monkeypatch.setattr(procedure_router, "expand_abbreviations", lambda t: t)
    assert str(lexical.classes_[lexical.predict_proba(text)[0].argmax()]) != "BCA"
