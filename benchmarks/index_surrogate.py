"""Which derived vectors stand in for real ones in the 1M index benchmark? Measured, not assumed.

The shared corpora hold ~607k real texts, so a 1,000,000-vector collection needs derived vectors,
and how they are made decides what recall an index reaches. Here three collections of the same size
(every cached real vector but the queries, ~149k) are compared on the statistics an index feels:

- ``real_only``: all real vectors, the reference;
- ``random``: 30k real vectors + mixtures of 2-3 random real ones (``index_scale.derive_random``);
- ``neighbour``: 30k real vectors + real vectors moved towards a near one (``derive_neighbour``).

Per collection: median cosine of the exact 1st / 10th / 100th neighbour of 1,000 held-out real
queries, the 10th-11th gap (near-ties are what recall@10 loses), the share of real vectors in the
exact top-10, and HNSW32 (efConstruction 100) recall@10 at efSearch 16-128. The recipe whose numbers
are nearest the all-real ones is the better stand-in; both are reported with every scale result.
Run: ``python -m benchmarks.index_surrogate`` (after ``python -m benchmarks.corpora --n 150000``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.index_scale import DIM, _recall, cached_real, derive_neighbour, derive_random


def surrogate(n_real: int = 150_000, n_sources: int = 30_000, n_queries: int = 1_000, seed: int = 0) -> dict[str, Any]:
    import faiss

    real = cached_real(n_real, cached_only=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    queries = np.ascontiguousarray(real[order[:n_queries]])
    pool = real[np.sort(order[n_queries:])]
    sources = pool[:n_sources]  # the corpus prefix: short texts and first sentences of articles
    n_derived = len(pool) - n_sources
    sets = {
        "real_only": pool,
        "random": np.concatenate([sources, derive_random(sources, n_derived, rng)]),
        "neighbour": np.concatenate([sources, derive_neighbour(sources, n_derived, rng)]),
    }
    out: dict[str, Any] = {}
    for name, vectors in sets.items():
        base = np.ascontiguousarray(vectors, dtype=np.float32)
        real_rows = len(base) if name == "real_only" else n_sources
        flat = faiss.IndexFlatIP(DIM)
        flat.add(base)
        scores, truth = flat.search(queries, 100)
        row: dict[str, Any] = {
            "n_vectors": len(base),
            "n_real": real_rows,
            "cos_1st": round(float(np.median(scores[:, 0])), 4),
            "cos_10th": round(float(np.median(scores[:, 9])), 4),
            "cos_100th": round(float(np.median(scores[:, 99])), 4),
            "gap_10th_11th": round(float(np.median(scores[:, 9] - scores[:, 10])), 5),
            "real_share_of_top10": round(float(np.mean(truth[:, :10] < real_rows)), 4),
        }
        t = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 100
        hnsw.add(base)
        row["hnsw32_build_s"] = round(time.perf_counter() - t, 1)
        for ef in (16, 32, 64, 128):
            hnsw.hnsw.efSearch = ef
            _, found = hnsw.search(queries, 10)
            row[f"hnsw32_recall_at_10_ef{ef}"] = round(_recall(found, truth[:, :10]), 4)
        out[name] = row
        print(name, row, flush=True)
    return {
        "dataset": "cached real e5 embeddings of the shared corpora (benchmarks.corpora prefix)",
        "protocol": (
            f"{n_queries} held-out real queries; same-size collections: all real vs {n_sources} real + derived "
            "(random mixtures / neighbour moves); exact neighbours by IndexFlatIP"
        ),
        "collections": out,
    }


if __name__ == "__main__":
    from benchmarks.common import write_result

    print(write_result("index_surrogate", surrogate()))
