"""The one way the product trains a supervised Router: `triage train`, the retrain and the router benchmarks.

A router is trained as the benchmarks measure it: C and the embedding weight are searched together
by cross-fitted, calibrated log-loss (``Router``'s grids), on every row of a small set and on a
stratified sample of a large one, after which the chosen model is fitted and calibrated on every row.
What the champion gate compares and what the service serves is therefore what `triage bench` scored.

Around ``Router.fit`` this adds what only large sets feel: the texts are segmented in parallel
processes first (underthesea, ~20-45 long articles a second per core, the costliest step after the
encoder), the encoder runs in batches with progress, and the SVM fits of the search run in threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from triage.config import get_settings
from triage.nlp.embed import Embedder
from triage.nlp.router import Router, warm_segmentation

Progress = Callable[[str, float], None]
ENCODE_BATCH = 64


def _quiet(_stage: str, _fraction: float) -> None:
    return None


def cores() -> int:
    """CPUs this process may use (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def new_router(embedder: Embedder | None, **overrides: Any) -> Router:
    """The unfitted Router as the product trains it; ``overrides`` (Router parameters) win.

    No parameter is pinned here: the defaults are the searched grids. SVM fits run on up to four
    threads (each holds its own copy of the features: ~1.5 GB on 27,000 news articles).
    """
    params: dict[str, Any] = {"n_jobs": min(4, cores()), **overrides}
    return Router(embedder=embedder, **params)


def encoder_chars(router: Router, texts: Sequence[str]) -> int:
    """Characters the encoder would read to embed ``texts`` for ``router``."""
    limit = router.embed_max_chars
    return sum(min(len(t), limit) for t in texts)


def encode_for(router: Router, texts: Sequence[str], progress: Progress = _quiet) -> np.ndarray | None:
    """The embeddings ``router`` would compute itself (the opening ``embed_max_chars``), in batches;
    None when it trains without them."""
    if router.embedder is None or max(router._weights()) <= 0:
        return None
    cut = [t[: router.embed_max_chars] for t in router._clip(texts)]
    parts = [np.zeros((0, router.embedder.dimension), dtype=np.float32)]
    for start in range(0, len(cut), ENCODE_BATCH):
        parts.append(router.embedder.encode(cut[start : start + ENCODE_BATCH]))
        progress("encoding", min(1.0, (start + ENCODE_BATCH) / max(len(cut), 1)))
    return np.concatenate(parts)


def fit_router(
    texts: Sequence[str],
    labels: Sequence[Any],
    *,
    embedder: Embedder | None,
    embeddings: np.ndarray | None = None,
    progress: Progress | None = None,
    embed_budget_chars: int | None = None,
    **overrides: Any,
) -> Router:
    """Train a Router on normalised ``texts`` (see the module docstring).

    ``embeddings`` are the texts' encodings when the caller has them (the retrain encodes once for
    training and evaluation); otherwise they are computed here. ``progress(stage, fraction)`` hears
    "segmenting", "encoding" and "training".

    With no ``embeddings`` given and more than ``embed_budget_chars`` of encoder input (``None``: the
    ``train_embed_budget_chars`` setting), the router trains without the embedding block and never
    needs the encoder to predict. The embedding carries meaning where words are few (questions,
    comments, small sets); an archive of long articles has words enough, and encoding it would be
    most of the training time (~0.14 s an article on two cores).
    """
    say = progress or _quiet
    router = new_router(embedder, **overrides)
    items = list(texts)
    budget = get_settings().train_embed_budget_chars if embed_budget_chars is None else embed_budget_chars
    over = budget is not None and encoder_chars(router, items) > budget
    if embeddings is None and embedder is not None and over:
        router.set_params(embedder=None)
    if router.use_words:
        say("segmenting", 0.0)
        warm_segmentation(items)
    if embeddings is None:
        embeddings = encode_for(router, items, say)
    say("training", 0.0)
    router.fit(items, labels, embeddings=embeddings)
    say("training", 1.0)
    return router
