"""Agency routing with zero labels, with labels, and with a named province."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import read_rows
from triage.nlp.agency_router import AgencyRouter, ColdStartRouter
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
    assert len(cold.classes_) >= 54


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
