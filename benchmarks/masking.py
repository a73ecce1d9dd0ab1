"""Masking benchmark: recall of person names and street addresses on a hand-labelled sample of public texts.

The sample (``benchmarks/data/masking_sample.jsonl``) holds only our annotations: where each text is
in ``../shared/data`` (file, line, and sentence for news articles) and the short spans we labelled as
names or street addresses; the texts themselves are read from the shared data at run time. A span
counts as masked when fewer copies of it are left after masking than were in the text. Texts with no
label are controls: how many of them the masking changes says what it costs in over-masking.

Compared: ``mask_pii`` alone (numbers and e-mails: what analysts got before), underthesea's NER
alone (PER entities), and ``mask_personal`` (NER + courtesy titles + family names + street rules).
"""

from __future__ import annotations

import gzip
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import data_dir
from triage.nlp.text import mask_personal, mask_pii, normalize

Progress = Callable[[str], None]
SAMPLE = Path(__file__).resolve().parent / "data" / "masking_sample.jsonl"


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return list(fh)


def load_sample() -> list[dict[str, Any]]:
    """The labelled rows with their text (a news article is cut to the labelled sentence)."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    files: dict[str, list[str]] = {}
    for row in rows:
        lines = files.setdefault(row["source"], _lines(data_dir() / row["source"]))
        text = json.loads(lines[row["line"]])["text"]
        if "sentence" in row:
            text = re.split(r"(?<=[.!?])\s+", text)[row["sentence"]]
        row["text"] = normalize(text)
    return rows


def _ner_only(text: str) -> str:
    """Mask underthesea's PER entities only (the tagger as shipped, no rules)."""
    from underthesea import ner

    out = text
    for word, _pos, _chunk, tag in ner(text):
        if tag.endswith("PER"):
            out = out.replace(word, "[HỌ TÊN]", 1)
    return out


def _score(rows: list[dict[str, Any]], mask: Callable[[str], str]) -> dict[str, Any]:
    hit = {"names": 0, "addresses": 0}
    total = {"names": 0, "addresses": 0}
    changed_controls, missed = 0, []
    for row in rows:
        masked = mask(row["text"])
        for kind in ("names", "addresses"):
            for span in row[kind]:
                total[kind] += 1
                if masked.count(span) < row["text"].count(span):
                    hit[kind] += 1
                else:
                    missed.append(span)
        if not row["names"] and not row["addresses"] and masked != row["text"]:
            changed_controls += 1
    n = total["names"] + total["addresses"]
    return {
        "recall_names": round(hit["names"] / max(1, total["names"]), 4),
        "recall_addresses": round(hit["addresses"] / max(1, total["addresses"]), 4),
        "recall": round((hit["names"] + hit["addresses"]) / max(1, n), 4),
        "controls_changed": changed_controls,
        "missed": missed,
    }


def masking(progress: Progress, quick: bool = False) -> dict[str, Any]:
    rows = load_sample()
    progress(f"masking: {len(rows)} labelled texts")
    mask_personal("khởi động")  # load the tagger outside the timing
    times = []
    for row in rows:
        mask_personal.cache_clear()
        start = time.perf_counter()
        mask_personal(row["text"])
        times.append((time.perf_counter() - start) * 1000 / max(1, len(row["text"])) * 100)
    return {
        "dataset": "hand-labelled names and street addresses in ViHSD comments and VNTC news sentences",
        "n_texts": len(rows),
        "n_controls": sum(1 for r in rows if not r["names"] and not r["addresses"]),
        "n_names": sum(len(r["names"]) for r in rows),
        "n_addresses": sum(len(r["addresses"]) for r in rows),
        "mask_personal": _score(rows, mask_personal),
        "ner_only": _score(rows, _ner_only),
        "mask_pii_only": _score(rows, mask_pii),
        "ms_per_100_chars_p50": round(statistics.median(times), 3),
    }


if __name__ == "__main__":
    from benchmarks.common import write_result

    print(write_result("masking", masking(print)))
