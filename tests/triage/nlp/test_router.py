"""Router on real data: learns, ranks, calibrates, abstains, round-trips through a folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from tests.conftest import uit_topics
from triage.errors import InvalidInput, ModelMissing, NotFitted
from triage.nlp.router import DEFAULT_C_GRID, DEFAULT_SEARCH_MAX_NONZEROS, BlockScaledSVC, Router


@pytest.fixture(scope="module")
def uit(shared_data: Path) -> dict[str, Any]:
    return uit_topics(shared_data, 1500, 300)


@pytest.fixture(scope="module")
def fitted(uit: dict[str, Any], embedder: Any) -> Router:
    return Router(embedder=embedder).fit(uit["tx"], uit["ty"])


def test_learns_better_than_majority(fitted: Router, uit: dict[str, Any]) -> None:
    pred = fitted.predict(uit["dx"])
    acc = float(np.mean(pred == np.asarray(uit["dy"])))
    majority = max(uit["dy"].count(c) for c in set(uit["dy"])) / len(uit["dy"])
    assert acc > majority + 0.1


def test_probabilities_follow_classes(fitted: Router, uit: dict[str, Any]) -> None:
    proba = fitted.predict_proba(uit["dx"][:20])
    assert proba.shape == (20, len(fitted.classes_))
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert list(fitted.classes_) == sorted(set(uit["ty"]))
    assert (fitted.classes_[proba.argmax(axis=1)] == fitted.predict(uit["dx"][:20])).all()


def test_top_k_is_sorted_and_consistent(fitted: Router, uit: dict[str, Any]) -> None:
    ranked = fitted.predict_top_k(uit["dx"][:10], k=3)
    for row, label in zip(ranked, fitted.predict(uit["dx"][:10]), strict=True):
        assert len(row) == 3
        assert row[0].label == label
        assert row[0].score >= row[1].score >= row[2].score
    with pytest.raises(InvalidInput):
        fitted.predict_top_k(uit["dx"][:1], k=0)


def test_calibration_confidence_tracks_accuracy(fitted: Router, uit: dict[str, Any]) -> None:
    proba = fitted.predict_proba(uit["dx"])
    conf = proba.max(axis=1)
    correct = fitted.classes_[proba.argmax(axis=1)] == np.asarray(uit["dy"])
    # Calibrated: mean confidence within 0.08 of accuracy, and confident rows are more often right.
    assert abs(conf.mean() - correct.mean()) < 0.08
    hi = conf >= np.median(conf)
    assert correct[hi].mean() > correct[~hi].mean()


def test_abstains_below_threshold(fitted: Router, uit: dict[str, Any]) -> None:
    fitted.set_params(abstain_threshold=0.999999)
    try:
        assert fitted.predict_or_abstain(uit["dx"][:5]) == [None] * 5
    finally:
        fitted.set_params(abstain_threshold=0.0)
    assert None not in fitted.predict_or_abstain(uit["dx"][:5])


def test_save_load_round_trip(fitted: Router, uit: dict[str, Any], embedder: Any, tmp_path: Path) -> None:
    fitted.save(tmp_path / "r", metrics={"note": "test"})
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["n_train"] == len(uit["tx"]) and manifest["embedding_dim"] == embedder.dimension
    assert manifest["data_hash"] == fitted.data_hash_ and manifest["versions"]["scikit-learn"]
    loaded = Router.load(tmp_path / "r", embedder=embedder)
    assert np.allclose(loaded.predict_proba(uit["dx"][:30]), fitted.predict_proba(uit["dx"][:30]))
    with pytest.raises(ModelMissing, match="needs the encoder"):
        Router.load(tmp_path / "r")


def test_precomputed_embeddings_match(fitted: Router, uit: dict[str, Any]) -> None:
    emb = fitted.embed_texts(uit["dx"][:10])
    assert np.allclose(fitted.predict_proba(uit["dx"][:10], embeddings=emb), fitted.predict_proba(uit["dx"][:10]))
    with pytest.raises(InvalidInput):
        fitted.predict_proba(uit["dx"][:10], embeddings=emb[:3])


def test_tfidf_only_and_long_tail_labels() -> None:
    texts = ["đường hỏng", "đường ngập", "đường tối", "thuế cao", "thuế sai", "hóa đơn thuế", "điện mất"]
    labels = ["road", "road", "road", "tax", "tax", "tax", "power"]  # "power" seen once
    r = Router().fit(texts, labels)
    assert r.rare_classes_ == ["power"]
    assert r.predict(["mất điện cả ngày"])[0] == "power"  # a label seen once is still predicted
    assert set(r.classes_) == {"power", "road", "tax"}


def test_errors() -> None:
    with pytest.raises(NotFitted):
        Router().predict(["x"])
    with pytest.raises(InvalidInput, match="two distinct"):
        Router().fit(["a", "b"], ["x", "x"])
    with pytest.raises(InvalidInput):
        Router().fit("abc", ["x"])
    with pytest.raises(InvalidInput):
        Router().fit(["a", "b"], ["x"])


def test_regularisation_is_chosen_by_out_of_fold_log_loss(fitted: Router, uit: dict[str, Any], tmp_path: Path) -> None:
    grid = list(Router().get_params()["C"])
    assert len(grid) > 1 and fitted.C_ in grid
    assert set(fitted.c_log_loss_) == set(grid)
    assert fitted.c_log_loss_[fitted.C_] == min(fitted.c_log_loss_.values())
    # The served SVM is the chosen one, refitted on every row.
    assert fitted.model_.estimator_.C == fitted.C_
    fitted.save(tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["chosen_C"] == fitted.C_ and len(manifest["C_out_of_fold_log_loss"]) == len(grid)
    # A single value is used as given, with nothing searched.
    one = Router(C=0.7, embedding_weight=0.0).fit(uit["tx"][:300], uit["ty"][:300])
    assert one.C_ == 0.7 and one.c_log_loss_ == {} and one.model_.estimator_.C == 0.7
    # An absurd strength loses to a sensible one on real data.
    pair = Router(C=(1e-5, 0.3), embedding_weight=0.0).fit(uit["tx"][:600], uit["ty"][:600])
    assert pair.C_ == 0.3 and pair.c_log_loss_[1e-5] > pair.c_log_loss_[0.3]


def test_embedding_weight_is_searched_with_c(fitted: Router, uit: dict[str, Any], tmp_path: Path) -> None:
    grid, weights = list(Router().get_params()["C"]), list(Router().get_params()["embedding_weight"])
    assert len(weights) > 1 and fitted.embedding_weight_ in weights
    assert len(fitted.search_log_loss_) == len(grid) * len(weights)
    best = f"C={fitted.C_}, embedding_weight={fitted.embedding_weight_}"
    assert fitted.search_log_loss_[best] == min(fitted.search_log_loss_.values())
    # c_log_loss_ is the chosen weight's row of the table.
    assert fitted.c_log_loss_ == {
        c: fitted.search_log_loss_[f"C={c}, embedding_weight={fitted.embedding_weight_}"] for c in grid
    }
    assert fitted.model_.estimator_.scale == fitted.embedding_weight_
    fitted.save(tmp_path / "w")
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert manifest["chosen_embedding_weight"] == fitted.embedding_weight_
    assert len(manifest["search_out_of_fold_log_loss"]) == len(grid) * len(weights)
    with pytest.raises(InvalidInput, match="embedding_weight"):
        Router(embedding_weight=(1.0, -1.0)).fit(uit["tx"][:100], uit["ty"][:100])


def test_weighing_inside_the_model_equals_scaling_the_features(fitted: Router, uit: dict[str, Any]) -> None:
    items = fitted._clip(uit["tx"][:400])
    X = fitted._features(items, fitted.embed_texts(items), fit=False)
    dim, y = fitted.embedding_dim_, np.asarray(uit["ty"][:400])
    assert dim > 0
    dense = X.toarray()
    dense[:, -dim:] *= 3.0
    plain = LinearSVC(C=0.3).fit(dense, y).decision_function(dense)
    inside = BlockScaledSVC(C=0.3, scale=3.0, n_scaled=dim).fit(X, y).decision_function(X)
    assert np.allclose(plain, inside, atol=1e-4)
    # The weight matters: ignoring the embedding changes the margins.
    without = BlockScaledSVC(C=0.3, scale=0.0, n_scaled=dim).fit(X, y).decision_function(X)
    assert not np.allclose(plain, without, atol=1e-2)


@pytest.mark.parametrize("bad", [0.0, -1.0, (), (0.1, 0.0)])
def test_rejects_non_positive_regularisation(bad: Any) -> None:
    with pytest.raises(InvalidInput, match="C must be"):
        Router(C=bad).fit(["đường hỏng", "thuế cao", "đường ngập", "thuế sai"], ["a", "b", "a", "b"])


def test_small_sets_search_on_every_row(fitted: Router, uit: dict[str, Any], tmp_path: Path) -> None:
    """Below search_max_nonzeros nothing changed: the search and the temperature's folds cover every row."""
    assert fitted.search_rows_ == fitted.calibration_rows_ == len(uit["tx"])
    fitted.save(tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["search_rows"] == manifest["calibration_rows"] == len(uit["tx"])


@pytest.mark.slow
def test_uit_vsfc_keeps_the_full_search(shared_data: Path) -> None:
    """The largest short-text set (UIT-VSFC train, 11,426 comments, with the 384-d embedding) is under the
    budget, so its search is exactly what it was before the sampled search existed."""
    data = uit_topics(shared_data, 20_000, 0)
    router = Router()
    X = router._features(router._clip(data["tx"]), np.ones((len(data["tx"]), 384), dtype=np.float32), fit=True)
    assert len(data["tx"]) == 11_426 and X.nnz < DEFAULT_SEARCH_MAX_NONZEROS
    assert router._search_sample(np.asarray(data["ty"]), np.diff(X.indptr), 3) is None


def test_large_sets_search_on_a_stratified_sample(uit: dict[str, Any]) -> None:
    """Above search_max_nonzeros the search sees a sample; the chosen SVM is fitted on every row and its
    temperature on a held-out fifth, and the result ranks about as well as the full search."""
    tx, ty, dx, dy = uit["tx"], uit["ty"], uit["dx"], uit["dy"]
    full = Router(embedding_weight=0.0, search_max_nonzeros=None).fit(tx, ty)
    nonzeros = np.diff(full._features(full._clip(tx), None, fit=False).indptr)
    third = int(nonzeros.sum()) // 3
    sampled = Router(embedding_weight=0.0, search_max_nonzeros=third, n_jobs=2).fit(tx, ty)
    assert full.search_rows_ == len(tx) and abs(sampled.search_rows_ - len(tx) / 3) <= 4  # rounding per class
    assert sampled.calibration_rows_ == round(0.2 * len(tx))
    assert len(sampled.search_log_loss_) == len(full.search_log_loss_) == 3
    assert sampled.C_ in DEFAULT_C_GRID and sampled.model_.estimator_.C == sampled.C_
    assert set(sampled.timings_) == {"features", "search", "total"}
    # Every class of the sample keeps its share; a rare one keeps one row per fold.
    y = np.asarray(ty)
    picked = sampled._search_sample(y, nonzeros, 3)
    assert picked is not None and len(set(picked)) == len(picked)
    shares = {c: float(np.mean(y[picked] == c)) for c in np.unique(y)}
    assert all(abs(shares[c] - float(np.mean(y == c))) < 0.02 for c in shares)
    rare = np.concatenate([y[:200], ["hiếm"] * 3])
    few = Router(search_max_nonzeros=50)._search_sample(rare, np.ones(len(rare)), 3)
    assert few is not None and int(np.sum(rare[few] == "hiếm")) == 3
    acc = {r: float(np.mean(r.predict(dx) == np.asarray(dy))) for r in (full, sampled)}
    assert acc[sampled] >= acc[full] - 0.02, acc


def test_routers_saved_before_the_sampled_search_still_load(fitted: Router) -> None:
    state = fitted.__getstate__()
    for key in ("search_max_nonzeros", "n_jobs"):
        state.pop(key)
    old = Router.__new__(Router)
    old.__setstate__(state)
    assert old.get_params()["search_max_nonzeros"] is None and old.get_params()["n_jobs"] == 1


def test_segmentation_off_the_main_thread_uses_a_fork_server(uit: dict[str, Any], monkeypatch: Any) -> None:
    """A service's retrain job runs in a thread: its worker processes must not be forks of a threaded process."""
    import threading

    from triage.nlp import router as module
    from triage.nlp.text import segment_joined

    monkeypatch.setattr(module, "PARALLEL_SEGMENT_CHARS", 0)
    asked: list[str] = []
    real = module.multiprocessing.get_context
    monkeypatch.setattr(module.multiprocessing, "get_context", lambda method: asked.append(method) or real(method))
    texts = [f"{t} (mã {i})" for i, t in enumerate(uit["tx"][:250])]  # not in the cache yet
    worker = threading.Thread(target=module.warm_segmentation, args=(texts, 2))
    worker.start()
    worker.join(timeout=300)
    assert not worker.is_alive() and asked == ["forkserver"]
    assert all(t in module._SEGMENT_CACHE for t in texts)
    assert module._SEGMENT_CACHE[texts[7]] == segment_joined(texts[7])
