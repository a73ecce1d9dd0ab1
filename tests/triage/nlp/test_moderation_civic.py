"""The built moderator leaves polite formal questions alone and still flags clear abuse (issue 21).

``built_moderator`` is the moderator ``triage build-models`` makes: the configured one when it was
built with calibrated thresholds, else one trained here the same way (``train_moderator``) into a
temporary folder, never over the shared models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.triage.nlp.test_moderation import OFFENSIVE
from training.moderation import DEFAULT_MAX_FALSE_FLAG_RATE, load_data, train_moderator
from triage.config import get_settings
from triage.errors import InvalidInput
from triage.nlp.manifest import MODERATOR, is_current
from triage.nlp.moderation import Moderator, default_moderator_path, is_calibrated
from triage.nlp.text import mask_pii, normalize

# The issue's example (flagged abuse + spam by the moderator before issue 21), and formal requests
# of the kinds citizens send to the portal.
ISSUE_EXAMPLE = (
    'Đề nghị cho biết trình tự thực hiện thủ tục tặng thưởng "Bằng khen của Thủ tướng Chính phủ" cho gia đình'
)
FORMAL_REQUESTS = [
    ISSUE_EXAMPLE,
    'Đề nghị cho biết thời hạn thực hiện thủ tục Khen thưởng "Huân chương Hồ Chí Minh" cho cá nhân có quá trình '
    "cống hiến",  # a dvc_faq dev question the previous moderator flagged as spam
    "Xin hỏi thủ tục cấp đổi giấy phép lái xe bị hỏng cần những giấy tờ gì và nộp ở đâu?",
    "Kính đề nghị Quý cơ quan hướng dẫn trình tự đăng ký hộ kinh doanh và thời hạn giải quyết hồ sơ.",
    "Xin hỏi Bộ Tài chính: hộ kinh doanh nộp thuế khoán theo quý hay theo năm?",
    "Đề nghị cho biết thành phần, số lượng hồ sơ khi thực hiện thủ tục chuyển mục đích sử dụng đất.",
]


@pytest.fixture(scope="module")
def built_moderator(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Moderator, dict[str, Any]]:
    folder = default_moderator_path(get_settings())
    if not (is_current(folder, MODERATOR) and is_calibrated(folder)):
        folder = tmp_path_factory.mktemp("moderation")
        train_moderator(shared_data, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return Moderator.load(folder), manifest


def screen(mod: Moderator, texts: list[str]) -> list[Any]:
    return mod.moderate([mask_pii(normalize(t)) for t in texts])  # as intake screens a submission


@pytest.mark.slow
def test_polite_formal_requests_are_not_flagged(built_moderator: tuple[Moderator, dict[str, Any]]) -> None:
    mod, _ = built_moderator
    results = screen(mod, FORMAL_REQUESTS)
    flagged = [(t, r.reasons, r.abuse, r.spam) for t, r in zip(FORMAL_REQUESTS, results, strict=True) if r.flagged]
    assert not flagged, flagged


@pytest.mark.slow
def test_clear_abuse_is_still_flagged(built_moderator: tuple[Moderator, dict[str, Any]]) -> None:
    mod, _ = built_moderator
    results = screen(mod, OFFENSIVE)
    assert all(r.flagged and "abuse" in r.reasons for r in results), results


@pytest.mark.slow
def test_thresholds_were_chosen_for_the_stated_rate(built_moderator: tuple[Moderator, dict[str, Any]]) -> None:
    mod, manifest = built_moderator
    cal = manifest["calibration"]
    assert cal["max_false_flag_rate"] == get_settings().moderation_max_false_flag_rate
    assert cal["n"] > 1000 and cal["false_flag_rate"] <= cal["max_false_flag_rate"]
    assert manifest["metrics"]["data"]["dvc_faq_train"] > 800  # the portal's questions were trained on
    assert mod.abuse_threshold == cal["abuse_threshold"] >= 0.5 and mod.spam_threshold == cal["spam_threshold"] >= 0.5


def test_calibrate_raises_thresholds_until_the_rate_holds(small_moderator: Moderator, shared_data: Path) -> None:
    data = load_data(shared_data, limit=2000)
    mod = Moderator()
    mod.abuse_, mod.spam_ = small_moderator.abuse_, small_moderator.spam_
    texts = data.civic_calibration
    assert len(texts) > 300
    mod.calibrate(texts, max_false_flag_rate=0.0)  # not one calibration text may be flagged
    assert not mod.predict(texts).any()
    assert mod.calibration_ is not None and mod.calibration_["false_flags"] == 0
    assert mod.predict(OFFENSIVE).all()  # the clear abuse scores above any civic text
    loose = Moderator()
    loose.abuse_, loose.spam_ = small_moderator.abuse_, small_moderator.spam_
    loose.calibrate(texts, max_false_flag_rate=0.5)
    assert loose.abuse_threshold == loose.spam_threshold == 0.5  # never below the floor
    with pytest.raises(InvalidInput, match="max_false_flag_rate"):
        mod.calibrate(texts, max_false_flag_rate=1.0)
    assert get_settings().moderation_max_false_flag_rate == DEFAULT_MAX_FALSE_FLAG_RATE
