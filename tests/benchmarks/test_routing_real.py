"""The real-questions routing benchmark, on small slices: it runs, and its comparisons hold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.common import load
from benchmarks.routing_real import _catalogue_labels, _locality_sample, naive_anchor, real_routing
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


def test_catalogue_labels_change_only_questions_whose_procedure_moved() -> None:
    """The portal filed press and publishing questions under Bộ TT&TT (now Bộ KHCN); the catalogue files
    those procedures under Bộ VHTTDL. Only a question whose own procedure code says so is relabelled."""
    registry = default_registry()
    rows = load("dvc_faq/dev.jsonl")
    labels = [registry.root(registry.resolve(str(r["agency"])).code).code for r in rows]
    relabelled = _catalogue_labels(registry, "dvc_faq/dev.jsonl", labels)
    changed = [(a, b) for a, b in zip(labels, relabelled, strict=True) if a != b]
    assert 0 < len(changed) < len(labels) // 10
    assert ("BKHCN", "BVHTTDL") in changed
    uncatalogued = [i for i, r in enumerate(rows) if not r.get("field")]
    assert all(labels[i] == relabelled[i] for i in uncatalogued)


@pytest.mark.slow
def test_quick_run_compares_against_the_previous_router(embedder: Any) -> None:
    out = real_routing(embedder, lambda _m: None, quick=True)
    cold = out["cold_start"]
    assert cold["router"]["top1"] > cold["previous_router"]["top1"]
    assert set(out["leave_one_source_out"]) == {"zalo", "dvc_faq", "pubhealthqa"}
    assert out["latency_ms"]["blended_p95"] > 0 and out["locality"]["recall"] is not None
