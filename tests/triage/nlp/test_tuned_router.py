"""TunedRouter on real UIT-VSFC feedback: fine-tunes a real copy of the encoder, blends, round-trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import uit_topics
from triage.errors import InvalidInput, ModelMissing, NotFitted
from triage.nlp.artifacts import kind_of, load
from triage.nlp.embed import OnnxEmbedder
from triage.nlp.manifest import FORMAT
from triage.nlp.router import Router
from triage.nlp.tuned_router import TunedRouter, _calibration_split


@pytest.fixture(scope="module")
def uit(shared_data: Path) -> dict[str, Any]:
    return uit_topics(shared_data, 400, 120)


@pytest.fixture(scope="module")
def tuned(uit: dict[str, Any], encoder_path: Path, tmp_path_factory: pytest.TempPathFactory) -> TunedRouter:
    """One small real fine-tuning run (top 2 layers, one epoch: seconds, not minutes)."""
    steps: list[tuple[int, int]] = []
    model = TunedRouter(
        base_encoder=encoder_path,
        epochs=1,
        train_layers=2,
        max_length=48,
        lr=1e-4,
        threads=2,
        work_dir=tmp_path_factory.mktemp("tuned"),
    ).fit(uit["tx"], uit["ty"], progress=lambda done, total: steps.append((done, total)))
    model.steps_seen = steps  # type: ignore[attr-defined]
    return model


@pytest.mark.slow  # fine-tunes the encoder
def test_fine_tunes_a_copy_and_reports_progress(tuned: TunedRouter, encoder_path: Path, uit: dict[str, Any]) -> None:
    steps = tuned.steps_seen  # type: ignore[attr-defined]
    n_fit = len(uit["tx"]) - tuned.n_calibration_
    assert steps[-1][0] == steps[-1][1] == -(-n_fit // 32)  # fine-tuned on the rows not held out
    base = OnnxEmbedder(encoder_path).encode(uit["dx"][:20])
    mine = tuned.embed_texts(uit["dx"][:20])
    cos = (base * mine).sum(axis=1)
    assert cos.min() < 0.999  # the weights moved
    assert cos.mean() > 0.5  # ... without forgetting what the texts mean
    assert tuned.router_.embedder_id_ is not None and "-ft-" in tuned.router_.embedder_id_


@pytest.mark.slow  # fine-tunes the encoder
def test_blend_learns_and_is_a_distribution(tuned: TunedRouter, uit: dict[str, Any]) -> None:
    proba = tuned.predict_proba(uit["dx"])
    assert proba.shape == (len(uit["dx"]), len(tuned.classes_))
    assert np.allclose(proba.sum(axis=1), 1.0)
    acc = float(np.mean(tuned.predict(uit["dx"]) == np.asarray(uit["dy"])))
    majority = max(uit["dy"].count(c) for c in set(uit["dy"])) / len(uit["dy"])
    assert acc > majority + 0.05
    ranked = tuned.predict_top_k(uit["dx"][:5], k=2)
    assert [r[0].label for r in ranked] == list(tuned.predict(uit["dx"][:5]))


@pytest.mark.slow  # fine-tunes the encoder
def test_head_weight_zero_is_the_router_alone(tuned: TunedRouter, uit: dict[str, Any]) -> None:
    emb = tuned.embed_texts(uit["dx"][:30])
    alone = tuned.router_.predict_proba(uit["dx"][:30], embeddings=emb)
    blended = tuned.predict_proba(uit["dx"][:30], embeddings=emb)
    temperature = tuned.temperature_
    tuned.head_weight, tuned.temperature_ = 0.0, 1.0
    try:
        assert np.allclose(tuned.predict_proba(uit["dx"][:30], embeddings=emb), alone)
    finally:
        tuned.head_weight, tuned.temperature_ = 0.5, temperature
    assert not np.allclose(blended, alone)  # the head does take part in the blend


@pytest.mark.slow  # fine-tunes the encoder
def test_temperature_fitted_on_held_out_rows_keeps_the_ranking(tuned: TunedRouter, uit: dict[str, Any]) -> None:
    assert tuned.n_calibration_ == len(_calibration_split(uit["ty"], 0.1, 0)[1]) >= 20
    assert tuned.temperature_ != 1.0 and 0.05 < tuned.temperature_ < 20
    calibrated = tuned.predict_proba(uit["dx"])
    temperature, tuned.temperature_ = tuned.temperature_, 1.0
    try:
        raw = tuned.predict_proba(uit["dx"])
    finally:
        tuned.temperature_ = temperature
    assert (calibrated.argmax(axis=1) == raw.argmax(axis=1)).all()
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    # On the held-out rows it was fitted on, the temperature lowers the log-loss of the blend.
    cal = _calibration_split(uit["ty"], 0.1, 0)[1]
    texts, gold = [uit["tx"][i] for i in cal], [uit["ty"][i] for i in cal]
    col = {str(c): j for j, c in enumerate(tuned.classes_)}
    rows, cols = np.arange(len(cal)), [col[g] for g in gold]
    with_t = -np.log(tuned.predict_proba(texts)[rows, cols]).mean()
    tuned.temperature_ = 1.0
    try:
        without = -np.log(tuned.predict_proba(texts)[rows, cols]).mean()
    finally:
        tuned.temperature_ = temperature
    assert with_t < without


def test_calibration_split_is_stratified_and_spares_rare_labels() -> None:
    labels = ["a"] * 300 + ["b"] * 100 + ["c"] * 4
    fit, cal = _calibration_split(labels, 0.1, 0)
    assert sorted(fit + cal) == list(range(len(labels))) and not set(fit) & set(cal)
    held = [labels[i] for i in cal]
    assert held.count("a") == 30 and held.count("b") == 10 and "c" not in held
    assert _calibration_split(labels, 0.1, 0) == (fit, cal)  # same seed, same split
    assert _calibration_split(labels[:150], 0.1, 0)[1] == []  # 15 rows: too few to fit a temperature
    assert _calibration_split(labels, 0.0, 0)[1] == []


@pytest.mark.slow  # fine-tunes the encoder
def test_round_trip_through_a_folder(tuned: TunedRouter, uit: dict[str, Any], tmp_path: Path) -> None:
    tuned.save(tmp_path / "m", metrics={"note": "test"})
    assert kind_of(tmp_path / "m") == "tuned_router"
    again = TunedRouter.load(tmp_path / "m")
    assert list(again.classes_) == list(tuned.classes_)
    assert np.allclose(again.predict_proba(uit["dx"][:25]), tuned.predict_proba(uit["dx"][:25]), atol=1e-6)
    # The dispatcher picks the class; a folder saved before `format` and `members` existed still loads.
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    assert manifest["format"] == FORMAT and manifest["members"] == 1
    path.write_text(json.dumps({k: v for k, v in manifest.items() if k not in ("format", "members")}))
    old = load(tmp_path / "m", threads=0)
    assert isinstance(old, TunedRouter) and len(old.members_) == 1
    assert np.allclose(old.predict_proba(uit["dx"][:25]), tuned.predict_proba(uit["dx"][:25]), atol=1e-6)


@pytest.mark.slow  # fine-tunes the encoder
def test_bad_input_and_missing_models(tuned: TunedRouter, uit: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        tuned.predict_proba("một câu")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        TunedRouter(head_weight=1.5).fit(uit["tx"][:10], uit["ty"][:10])
    with pytest.raises(InvalidInput):
        TunedRouter(calibration_share=0.7).fit(uit["tx"][:10], uit["ty"][:10])
    with pytest.raises(InvalidInput):
        TunedRouter().fit(uit["tx"][:10], uit["ty"][:9])
    with pytest.raises(NotFitted):
        TunedRouter().predict(["một câu"])
    Router().fit(uit["tx"][:60], uit["ty"][:60]).save(tmp_path / "plain")
    assert kind_of(tmp_path / "plain") == "router"
    with pytest.raises(ModelMissing):
        TunedRouter.load(tmp_path / "plain")
    assert tuned.predict_proba([]).shape == (0, len(tuned.classes_))


@pytest.mark.slow  # fine-tunes the encoder
def test_members_are_seeded_apart_averaged_and_round_trip(
    uit: dict[str, Any], encoder_path: Path, tmp_path: Path
) -> None:
    steps: list[tuple[int, int]] = []
    pair = TunedRouter(
        base_encoder=encoder_path,
        epochs=1,
        train_layers=1,
        max_length=32,
        lr=1e-4,
        members=2,
        threads=2,
        work_dir=tmp_path / "work",
    ).fit(uit["tx"][:200], uit["ty"][:200], progress=lambda done, total: steps.append((done, total)))
    assert len(pair.members_) == 2 and pair.dimension == 2 * pair.router_.embedding_dim_
    assert steps[-1][0] == steps[-1][1] and steps == sorted(steps)  # one bar across both members
    texts = uit["dx"][:40]
    emb = pair.embed_texts(texts)
    first, second = np.split(emb, 2, axis=1)
    assert not np.allclose(first, second)  # different seeds, different encoders
    raw = np.mean([m.blend(texts, e, 0.5) for m, e in zip(pair.members_, (first, second), strict=True)], axis=0)
    temperature, pair.temperature_ = pair.temperature_, 1.0
    try:
        assert np.allclose(pair.predict_proba(texts, embeddings=emb), raw)  # the plain mean of the members
    finally:
        pair.temperature_ = temperature
    assert not np.allclose(raw, pair.members_[0].blend(texts, first, 0.5))
    with pytest.raises(InvalidInput, match="columns"):
        pair.predict_proba(texts, embeddings=first)  # one member's embeddings are not enough
    pair.save(tmp_path / "m")
    assert (tmp_path / "m" / "encoder-1" / "head.npz").exists() and (tmp_path / "m" / "router-1").is_dir()
    again = TunedRouter.load(tmp_path / "m")
    assert again.members == 2 and len(again.members_) == 2
    assert np.allclose(again.predict_proba(texts), pair.predict_proba(texts), atol=1e-6)
    with pytest.raises(InvalidInput, match="members"):
        TunedRouter(members=0).fit(uit["tx"][:10], uit["ty"][:10])
