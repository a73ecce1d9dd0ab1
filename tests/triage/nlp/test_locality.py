"""Local matter or policy question."""

from __future__ import annotations

import pytest

from triage.nlp.agencies import default_registry
from triage.nlp.locality import decide_locality, residence_spans


@pytest.mark.parametrize(
    ("text", "province"),
    [
        ("Tuyến đường liên xã ở huyện Ba Vì, Hà Nội bị ngập nặng mỗi khi mưa, đề nghị sửa chữa.", "P-HN"),
        ("Bãi rác tại phường Hòa Khánh, Đà Nẵng gây ô nhiễm, mùi hôi suốt nhiều tháng.", "P-DN"),
        ("Cán bộ UBND xã ở Hưng Yên gây khó khăn khi tôi làm hồ sơ đất đai.", "P-HY"),
    ],
)
def test_a_concrete_local_matter_is_local(text: str, province: str) -> None:
    decision = decide_locality(text, default_registry())
    assert decision.local and [p.code for p in decision.provinces] == [province]
    assert "thẩm quyền địa phương" in decision.reason


@pytest.mark.parametrize(
    "text",
    [
        "Bà Lê Kim Tuyền (TPHCM) có một mảnh đất được cấp sổ năm 2005, nay muốn tách thửa cần điều kiện gì?",
        "Ông Nguyễn Văn A ở Sơn La hỏi: chế độ thai sản cho lao động nam được quy định thế nào?",
        "Tôi thường trú tại Quảng Ninh, xin hỏi điều kiện để được cấp hộ chiếu phổ thông lần đầu?",
    ],
)
def test_where_the_writer_lives_is_not_the_matter(text: str) -> None:
    decision = decide_locality(text, default_registry())
    assert not decision.local and decision.provinces == []
    assert decision.residence  # the province is still recognised, as a residence
    assert "nơi cư trú" in decision.reason


def test_a_policy_question_naming_a_city_stays_with_the_ministry() -> None:
    decision = decide_locality("Xin hỏi thủ tục cấp hộ chiếu ở Hà Nội như thế nào?", default_registry())
    assert not decision.local and decision.policy_cues > decision.local_cues


def test_no_province_is_never_local() -> None:
    assert not decide_locality("Đường bị ngập sâu mỗi khi mưa", default_registry()).local


def test_residence_spans_cover_brackets_and_phrases() -> None:
    text = "Bà Tuyền (TPHCM) hỏi. Ông Nam ở Sơn La hỏi tiếp."
    spans = residence_spans(text)
    assert any(text[a:b] == "(TPHCM)" for a, b in spans)
    assert any("Sơn La" in text[a:b] for a, b in spans)
