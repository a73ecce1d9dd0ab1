"""The real-questions routing benchmark, on small slices: it runs, and its comparisons hold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.routing_real import _locality_sample, naive_anchor, real_routing
from triage.nlp.agencies import default_registry


def test_the_naive_anchor_votes_by_issuing_ministry() -> None:
    texts = ["Thủ tục cấp hộ chiếu phổ thông", "Đăng ký kết hôn với người nước ngoài"]
    proba, classes = naive_anchor(texts, default_registry())
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert [str(classes[i]) for i in proba.argmax(axis=1)] == ["BCA", "BTP"]


def test_the_locality_sample_has_both_kinds() -> None:
    texts, local, note = _locality_sample()
    assert len(texts) == len(local) and 0 < sum(local) < len(local)
    assert "hand-labelled" in note


@pytest.mark.slow
def test_quick_run_compares_against_the_previous_router(embedder: Any) -> None:
    out = real_routing(embedder, lambda _m: None, quick=True)
    cold = out["cold_start"]
    assert cold["router"]["top1"] > cold["previous_router"]["top1"]
    assert set(out["leave_one_source_out"]) == {"zalo", "dvc_faq", "pubhealthqa"}
    assert out["latency_ms"]["blended_p95"] > 0 and out["locality"]["recall"] is not None
