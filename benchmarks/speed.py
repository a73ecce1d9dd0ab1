"""Speed benchmarks: encoder throughput (torch fp32 vs int8 ONNX) and routing latency per text."""

from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Any

import numpy as np

from benchmarks.common import load, median_time
from triage.nlp.agency_router import AgencyRouter
from triage.nlp.embed import OnnxEmbedder, SentenceEmbedder


def _latency_ms(fn: Any, items: list[str]) -> dict[str, float]:
    fn(items[:3])
    times = []
    for t in items:
        s = time.perf_counter()
        fn([t])
        times.append((time.perf_counter() - s) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2)}


def embedding_speed(folder: Any, threads: int = 2, quick: bool = False) -> dict[str, Any]:
    """Question-length texts (Zalo), batch 32, on ``threads`` cores; both paths in the same run."""
    texts = [r["text"] for r in load("zalo_legal/agency_train.jsonl")]
    texts = texts[:128] if quick else texts[:512]
    torch_e = SentenceEmbedder(folder, threads=threads)
    onnx_e = OnnxEmbedder(folder, threads=threads)
    repeats = 2 if quick else 5
    out: dict[str, Any] = {
        "texts": len(texts),
        "batch_size": 32,
        "threads": threads,
        "repeats": repeats,
        "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
    }
    encoders: list[tuple[str, Any]] = [("torch_fp32", torch_e), ("onnx_int8", onnx_e)]
    for name, e in encoders:
        sec = median_time(partial(e.encode, texts, batch_size=32), repeats=repeats)
        out[name] = {"texts_per_s": round(len(texts) / sec, 1), "single_text": _latency_ms(e.encode, texts[:100])}
    ref, fast = torch_e.encode(texts), onnx_e.encode(texts)
    cos = (ref * fast).sum(axis=1)
    out["cosine_onnx_vs_fp32"] = {"mean": round(float(cos.mean()), 4), "min": round(float(cos.min()), 4)}
    out["speedup"] = round(out["onnx_int8"]["texts_per_s"] / out["torch_fp32"]["texts_per_s"], 2)
    return out


def router_latency(embedder: Any, quick: bool = False) -> dict[str, Any]:
    """End-to-end agency routing of one text (encode + cold start + supervised + locality)."""
    rows = load("zalo_legal/agency_train.jsonl")
    x, y = [r["text"] for r in rows], [r["agency"] for r in rows]
    cold = AgencyRouter(embedder=embedder).fit()
    trained = AgencyRouter(embedder=embedder).fit(x, y)
    probe = x[:50] if quick else x[:200]
    return {
        "texts": len(probe),
        "cold_start_only": _latency_ms(lambda b: cold.predict_proba(b), probe),
        "supervised_plus_cold_start": _latency_ms(lambda b: trained.predict_proba(b), probe),
        "includes": "encoding with the default (ONNX int8) encoder, one text per call",
    }
