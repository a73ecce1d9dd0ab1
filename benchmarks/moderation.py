"""Moderation benchmark: ViHSD dev macro F1 and ViSpam dev spam F1 of the moderator's heads against
TF-IDF + LinearSVC trained on exactly the same rows in the same run, and the false-flag rate of both
on held-out civic texts (the share of legitimate submissions a clerk would be asked to review)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from benchmarks.common import Baseline, cached_embeddings, data_dir
from training.moderation import load_data
from triage.nlp.embed import Embedder
from triage.nlp.moderation import ABUSE_LABELS, ABUSIVE, Moderator
from triage.nlp.router import Router, warm_segmentation

Progress = Callable[[str], None]


def _macro(gold: list[str], pred: Any) -> float:
    return round(float(f1_score(gold, pred, average="macro", labels=list(ABUSE_LABELS))), 4)


def _spam_f1(gold: list[int], pred: Any) -> float:
    return round(float(f1_score(gold, pred)), 4)


def moderation(embedder: Embedder, progress: Progress, quick: bool = False, e5: bool = True) -> dict[str, Any]:
    """Train both heads (TF-IDF; the abuse head also with e5 unless ``e5=False``) and the baselines.

    The e5 variant encodes ~27,000 texts: minutes on a fast CPU, hours on a slow AVX2-only one, so it
    can be left out (``python -m benchmarks.moderation --no-e5``); the shipped moderator is TF-IDF only.
    """
    data = load_data(data_dir(), limit=2000 if quick else None)
    dev_x, dev_y = data.vihsd_dev
    spam_x, spam_y = data.vispam_dev[0], [int(v) for v in data.vispam_dev[1]]
    civic = data.civic_held_out
    progress(f"moderation: {data.sizes()}; segmenting")
    warm_segmentation(data.abuse_texts + data.spam_texts + dev_x + spam_x + civic)

    progress("moderation: training the moderator (TF-IDF heads)")
    t = time.perf_counter()
    mod = Moderator().fit(data.abuse_texts, data.abuse_labels, data.spam_texts, data.spam_labels)
    fit_s = time.perf_counter() - t
    abuse = mod._heads()[0]
    flags = mod.predict(civic)

    progress("moderation: baselines")
    t = time.perf_counter()
    base_abuse = Baseline().fit(data.abuse_texts, data.abuse_labels)
    base_spam = Baseline().fit(data.spam_texts, [str(v) for v in data.spam_labels])
    base_fit_s = time.perf_counter() - t

    def base_pred(model: Baseline, texts: list[str]) -> np.ndarray:
        return np.asarray(model.classes_)[model.scores(texts).argmax(axis=1)]

    base_flags = np.isin(base_pred(base_abuse, civic), ABUSIVE) | (base_pred(base_spam, civic) == "1")

    e5_f1: float | None = None
    if e5:
        progress(f"moderation: encoding {len(data.abuse_texts) + len(dev_x)} texts for the e5 abuse head")
        with_e5 = Router(embedder=embedder)
        emb = cached_embeddings(embedder, data.abuse_texts + dev_x, with_e5.embed_texts)
        with_e5.fit(data.abuse_texts, data.abuse_labels, embeddings=emb[: len(data.abuse_texts)])
        e5_f1 = _macro(dev_y, with_e5.predict(dev_x, embeddings=emb[len(data.abuse_texts) :]))

    progress("moderation: latency of one text")
    one: list[float] = []
    for text in civic[:50] + dev_x[:50]:
        t = time.perf_counter()
        mod.moderate([text])
        one.append((time.perf_counter() - t) * 1000)

    return {
        "dataset": "ViHSD / ViSpamReviews dev + held-out civic texts",
        "protocol": "train -> dev (train splits + civic negatives as clean / not spam)",
        "data": data.sizes(),
        "thresholds": {"abuse": mod.abuse_threshold, "spam": mod.spam_threshold},
        "router": {
            "vihsd_macro_f1": _macro(dev_y, abuse.predict(dev_x)),
            "vihsd_macro_f1_with_e5": e5_f1,  # None: not measured in this run
            "vispam_spam_f1": _spam_f1(spam_y, (mod.scores(spam_x)["spam"] >= mod.spam_threshold).astype(int)),
            "civic_false_flag_rate": round(float(flags.mean()), 4),
            "civic_false_flags": int(flags.sum()),
            "fit_seconds": round(fit_s, 1),
            "one_text_p50_ms": round(statistics.median(one), 2),
        },
        "baseline": {
            "vihsd_macro_f1": _macro(dev_y, base_pred(base_abuse, dev_x)),
            "vispam_spam_f1": _spam_f1(spam_y, base_pred(base_spam, spam_x).astype(int)),
            "civic_false_flag_rate": round(float(base_flags.mean()), 4),
            "civic_false_flags": int(base_flags.sum()),
            "fit_seconds": round(base_fit_s, 1),
        },
        "n_civic_held_out": len(civic),
        "encoder": embedder.model_id,
        "note": "nothing is removed automatically: a flag asks a clerk to confirm or dismiss it",
    }


if __name__ == "__main__":
    import sys

    from benchmarks.common import write_result
    from triage.config import get_settings
    from triage.nlp.embed import load_embedder

    settings = get_settings()
    emb = load_embedder(settings.encoder_path, settings.model_dir)
    result = moderation(
        emb, lambda m: print(m, file=sys.stderr, flush=True), quick="--quick" in sys.argv, e5="--no-e5" not in sys.argv
    )
    print(write_result("moderation", {**result, "quick": "--quick" in sys.argv}))
