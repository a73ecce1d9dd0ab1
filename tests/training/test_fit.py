"""The one training path (training/fit.py): the CLI, the retrain and the benchmarks train the same Router."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import uit_topics
from training.fit import encoder_chars, fit_router, new_router
from triage.nlp.router import DEFAULT_C_GRID, DEFAULT_EMBEDDING_WEIGHTS, DEFAULT_SEARCH_MAX_NONZEROS, Router


def test_the_product_router_pins_nothing() -> None:
    router = new_router(None)
    params = router.get_params()
    assert params["C"] == DEFAULT_C_GRID and params["embedding_weight"] == DEFAULT_EMBEDDING_WEIGHTS
    assert params["search_max_nonzeros"] == DEFAULT_SEARCH_MAX_NONZEROS and params["n_jobs"] >= 1
    # Everything but the thread count is Router's own default.
    plain = Router().get_params()
    assert {k: v for k, v in params.items() if k != "n_jobs"} == {k: v for k, v in plain.items() if k != "n_jobs"}
    assert new_router(None, C=0.7).C == 0.7  # a caller may still choose


def test_fit_router_searches_and_reports_progress(shared_data: Path, embedder: Any) -> None:
    uit = uit_topics(shared_data, 600, 200)
    heard: list[str] = []
    router = fit_router(uit["tx"], uit["ty"], embedder=embedder, progress=lambda stage, _f: heard.append(stage))
    assert heard[0] == "segmenting" and "encoding" in heard and heard[-1] == "training"
    assert len(router.search_log_loss_) == len(DEFAULT_C_GRID) * len(DEFAULT_EMBEDDING_WEIGHTS)
    assert router.embedding_dim_ == embedder.dimension
    acc = float(np.mean(router.predict(uit["dx"]) == np.asarray(uit["dy"])))
    assert acc > 0.75
    # Given embeddings are used as they are (nothing encoded again).
    emb = router.embed_texts(uit["tx"])
    again: list[str] = []
    fit_router(uit["tx"], uit["ty"], embedder=embedder, embeddings=emb, progress=lambda s, _f: again.append(s))
    assert "encoding" not in again


def test_fit_router_without_an_encoder(shared_data: Path) -> None:
    uit = uit_topics(shared_data, 300, 50)
    router = fit_router(uit["tx"], uit["ty"], embedder=None)
    assert router.embedding_dim_ == 0 and len(router.search_log_loss_) == len(DEFAULT_C_GRID)


def test_fit_router_skips_the_encoder_above_its_budget(shared_data: Path, embedder: Any) -> None:
    uit = uit_topics(shared_data, 300, 50)
    chars = encoder_chars(new_router(embedder), uit["tx"])
    heard: list[str] = []
    over = fit_router(
        uit["tx"], uit["ty"], embedder=embedder, embed_budget_chars=chars - 1, progress=lambda s, _f: heard.append(s)
    )
    assert "encoding" not in heard and over.embedding_dim_ == 0 and over.embedder is None
    assert len(over.predict(uit["dx"])) == len(uit["dx"])  # predicts with no encoder at hand
    within = fit_router(uit["tx"], uit["ty"], embedder=embedder, embed_budget_chars=chars)
    assert within.embedding_dim_ == embedder.dimension
    # Embeddings the caller already paid for are used whatever their size.
    given = fit_router(
        uit["tx"], uit["ty"], embedder=embedder, embeddings=within.embed_texts(uit["tx"]), embed_budget_chars=0
    )
    assert given.embedding_dim_ == embedder.dimension
