"""Shared fixtures: the real shared datasets and the real default encoder (built offline).

The database fixtures (``db``, ``empty_db``, ``db_url``, ...) and the ``--backends`` option come from
the plugin tests/db.py, registered here for every test directory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

# The settings' path defaults (models, ../shared/data) are relative to the working directory; pin them to
# this checkout so a test finds the models and datasets from any directory (the environment still wins).
os.environ.setdefault("TRIAGE_MODEL_DIR", str(REPO / "models"))
os.environ.setdefault("TRIAGE_SHARED_DATA_DIR", str(DATA))

pytest_plugins = ["tests.db", "tests.smtp"]


def _malloc_trim() -> ctypes._CFuncPtr | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (macOS, musl): freed memory simply stays with the allocator
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Hand back what finished tests freed: collect reference cycles (apps, models, sessions hold many),
    then return glibc's free heap pages to the system. Without the trim a freed app's ~1 GB of model
    buffers stays in the process and the next module's models land on top of it."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


@pytest.fixture(scope="module", autouse=True)
def _release_memory_after_each_module() -> Iterator[None]:
    """Module-scoped apps and models are torn down before this (autouse fixtures are set up first)."""
    yield
    release_memory()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.exists():
        pytest.skip(f"shared datasets not found at {DATA}")
    return DATA


def read_rows(path: Path, n: int | None = None) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line))
            if n is not None and len(rows) >= n:
                break
    return rows


def uit_topics(shared_data: Path, n_train: int, n_dev: int) -> dict[str, Any]:
    """The first UIT-VSFC train and dev rows as normalised texts (tx, dx) and topics (ty, dy)."""
    from triage.nlp.text import normalize

    train = read_rows(shared_data / "uit_vsfc" / "train.jsonl", n_train)
    dev = read_rows(shared_data / "uit_vsfc" / "dev.jsonl", n_dev)
    return {
        "tx": [normalize(r["text"]) for r in train],
        "ty": [r["topic"] for r in train],
        "dx": [normalize(r["text"]) for r in dev],
        "dy": [r["topic"] for r in dev],
    }


@pytest.fixture(scope="session")
def encoder_path() -> Path:
    """The default encoder folder; `make test` builds it first, this builds it if still missing."""
    from training.build_encoder import build_encoder
    from triage.config import get_settings

    return build_encoder(get_settings().model_dir / "encoder")


@pytest.fixture(scope="session")
def embedder(encoder_path: Path) -> Any:
    from triage.nlp.embed import OnnxEmbedder

    return OnnxEmbedder(encoder_path)


# Session fixtures that train a model for the tests on top of them: every test that uses one, however
# indirectly, is `slow` (make test-fast leaves them out; make test runs them).
TRAINS = {"small_moderator"}


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def small_moderator(shared_data: Path) -> Any:
    """A moderator trained on a small real slice of ViHSD, ViSpam and the civic negatives (~15 s)."""
    from training.moderation import load_data
    from triage.nlp.moderation import Moderator

    data = load_data(shared_data, limit=2000)
    return Moderator().fit(data.abuse_texts, data.abuse_labels, data.spam_texts, data.spam_labels)
