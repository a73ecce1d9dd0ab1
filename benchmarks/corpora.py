"""Large real-text corpora and their embeddings for the scale benchmarks (index scale, themes).

The shared datasets hold ~63,000 short texts (comments, questions, feedback, paraphrase pairs) and
33,759 full news articles. Scale benchmarks need more real texts than that, so the articles are
also cut into sentences: each is a real Vietnamese sentence, and the first sentence of every
article comes before the second of any, so a prefix of the corpus spans every article and topic.

Embeddings are computed once with the default encoder (ONNX int8 path) and kept under
``var/bench-cache`` in chunks, so an interrupted run resumes and every benchmark shares them.
Run ``python -m benchmarks.corpora --n 150000`` to build the cache ahead of the benchmarks.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import data_dir
from triage.nlp.text import normalize

CACHE = Path(__file__).resolve().parents[1] / "var" / "bench-cache" / "corpora"
CHUNK = 2_000
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"“'(]?[A-ZÀ-Ỹ0-9Đ])")
_SHORT_SETS: tuple[tuple[str, str, str | None], ...] = (
    # (file under data/, text field, label field)
    ("uit_vsfc/train.jsonl", "text", "topic"),
    ("uit_vsfc/dev.jsonl", "text", "topic"),
    ("vihsd/train.jsonl", "text", "label"),
    ("vihsd/dev.jsonl", "text", "label"),
    ("vispam/train.jsonl", "text", "spam_type"),
    ("vispam/dev.jsonl", "text", "spam_type"),
    ("zalo_legal/agency_train.jsonl", "text", "agency"),
    ("zalo_legal/unlabelled.jsonl", "text", None),
    ("pubhealthqa/train.jsonl", "text", "field"),
)


@dataclass(frozen=True)
class RealText:
    """One real text with where it came from (``source``) and the label its set gives it."""

    text: str
    source: str
    label: str


def _rows(path: Path) -> list[dict[str, object]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [json.loads(line) for line in fh if line.strip()]


def split_sentences(article: str, min_chars: int = 30, max_chars: int = 500) -> list[str]:
    """Sentences of a news article, dropping fragments too short or too long to be one sentence."""
    out = []
    for s in _SENTENCE_END.split(article):
        s = s.strip()
        if min_chars <= len(s) <= max_chars:
            out.append(s)
    return out


def real_texts(limit: int | None = None) -> list[RealText]:
    """Up to ``limit`` distinct real texts in a fixed order: short sets, then article sentences."""
    base = data_dir()
    seen: set[str] = set()
    out: list[RealText] = []

    def add(text: str, source: str, label: object) -> bool:
        t = normalize(text)
        if len(t) < 3 or t in seen:
            return False
        seen.add(t)
        out.append(RealText(t, source, "" if label is None else str(label)))
        return limit is not None and len(out) >= limit

    for rel, field, label_field in _SHORT_SETS:
        for row in _rows(base / rel):
            if add(str(row.get(field, "")), rel.split("/")[0], row.get(label_field) if label_field else None):
                return out
    for row in _rows(base / "vnpara" / "pairs.jsonl"):
        for key in ("text1", "text2"):
            if add(str(row[key]), "vnpara", ""):
                return out
    vntc = _rows(base / "vntc" / "train.jsonl.gz")
    articles = [(split_sentences(str(r["text"])), str(r.get("label", ""))) for r in vntc]
    depth = max((len(s) for s, _ in articles), default=0)
    for i in range(depth):
        for sentences, label in articles:
            if i < len(sentences) and add(sentences[i], "vntc", label):
                return out
    return out


def _embedder() -> object:
    from triage.config import get_settings
    from triage.nlp.embed import load_embedder

    s = get_settings()
    return load_embedder(s.encoder_path, s.model_dir, backend="onnx", threads=0, spin=True)


def real_embeddings(n: int, *, verbose: bool = True) -> tuple[list[RealText], np.ndarray]:
    """The first ``n`` real texts and their L2-normalised embeddings (float32, shape n x dim)."""
    texts = real_texts(n)
    if len(texts) < n and verbose:
        print(f"only {len(texts)} distinct real texts available (asked {n})", file=sys.stderr)
    emb = _embedder()
    model_id = str(getattr(emb, "model_id", "encoder"))
    parts = []
    t0 = time.perf_counter()
    for start in range(0, len(texts), CHUNK):
        chunk = [t.text for t in texts[start : start + CHUNK]]
        digest = hashlib.sha256(model_id.encode())
        for t in chunk:
            digest.update(t.encode("utf-8") + b"\x00")
        path = CACHE / f"{digest.hexdigest()[:24]}.npy"
        if path.exists():
            parts.append(np.load(path))
            continue
        vecs = np.asarray(emb.encode(chunk, batch_size=64), dtype=np.float32)  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vecs)
        tmp.replace(path)
        parts.append(vecs)
        if verbose:
            done = start + len(chunk)
            rate = done / max(time.perf_counter() - t0, 1e-9)
            print(f"encoded {done}/{len(texts)} real texts ({rate:.0f}/s so far)", file=sys.stderr, flush=True)
    vectors = np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)
    return texts, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=150_000, help="how many real texts to embed")
    args = parser.parse_args()
    texts, vectors = real_embeddings(args.n)
    sources: dict[str, int] = {}
    for t in texts:
        sources[t.source] = sources.get(t.source, 0) + 1
    print(json.dumps({"texts": len(texts), "shape": list(vectors.shape), "by_source": sources}, ensure_ascii=False))


if __name__ == "__main__":
    main()
