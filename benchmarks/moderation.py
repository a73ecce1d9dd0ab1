"""Moderation benchmark: ViHSD dev macro F1 and ViSpam dev spam F1 of the moderator's heads against
TF-IDF + LinearSVC trained on exactly the same rows in the same run, and the false-flag rate of both
on held-out civic texts (the share of legitimate submissions a clerk would be asked to review).

Since issue 21 the moderator is also trained on the portal's FAQ questions (``dvc_faq`` train) and
its thresholds are chosen on civic calibration texts for a stated false-flag rate. The moderator as
it was before (no ``dvc_faq``, thresholds 0.5) is retrained in the same run as ``previous``, and
both are measured on every ``dvc_faq`` question, filed as intake files them (normalised, masked):
dev (never trained or calibrated on) and train + dev (the "public dvc_faq questions" of the issue).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from benchmarks.common import Baseline, cached_embeddings, data_dir
from training.moderation import DEFAULT_MAX_FALSE_FLAG_RATE, load_data
from triage.nlp.embed import Embedder
from triage.nlp.io import read_jsonl
from triage.nlp.moderation import ABUSE_LABELS, ABUSIVE, Moderator
from triage.nlp.router import Router, warm_segmentation
from triage.nlp.text import mask_pii, normalize

Progress = Callable[[str], None]


def _macro(gold: list[str], pred: Any) -> float:
    return round(float(f1_score(gold, pred, average="macro", labels=list(ABUSE_LABELS))), 4)


def _spam_f1(gold: list[int], pred: Any) -> float:
    return round(float(f1_score(gold, pred)), 4)


def _dvc_faq(split: str, limit: int | None) -> list[str]:
    """The portal's FAQ questions as intake screens them: normalised, personal data masked."""
    path = data_dir() / "dvc_faq" / f"{split}.jsonl"
    rows = list(read_jsonl(path)) if path.exists() else []
    return [mask_pii(normalize(str(r["text"]))) for r in rows[:limit]]


def _false_flags(mod: Moderator, texts: list[str]) -> dict[str, Any]:
    results = mod.moderate(texts)
    flagged = [(t, r) for t, r in zip(texts, results, strict=True) if r.flagged]
    return {
        "n": len(texts),
        "false_flags": len(flagged),
        "false_flag_rate": round(len(flagged) / len(texts), 4) if texts else None,
        "abuse": sum("abuse" in r.reasons for _, r in flagged),
        "spam": sum("spam" in r.reasons for _, r in flagged),
        "examples": [
            {"text": t[:120], "reasons": list(r.reasons), "abuse": r.abuse, "spam": r.spam} for t, r in flagged[:3]
        ],
    }


def _civic_and_dev(mod: Moderator, data: Any, dvc_dev: list[str], dvc_all: list[str]) -> dict[str, Any]:
    dev_x, dev_y = data.vihsd_dev
    spam_x, spam_y = data.vispam_dev[0], [int(v) for v in data.vispam_dev[1]]
    abuse = mod._heads()[0]
    s_dev = mod.scores(dev_x)
    spam = mod.scores(spam_x)["spam"]
    civic = mod.predict(data.civic_held_out)
    return {
        "thresholds": {"abuse": mod.abuse_threshold, "spam": mod.spam_threshold},
        "vihsd_macro_f1": _macro(dev_y, abuse.predict(dev_x)),
        "vihsd_abuse_flag_f1": _spam_f1(
            [int(g in ABUSIVE) for g in dev_y], (s_dev["abuse"] >= mod.abuse_threshold).astype(int)
        ),
        "vispam_spam_f1": _spam_f1(spam_y, (spam >= mod.spam_threshold).astype(int)),
        "vispam_spam_f1_at_0_5": _spam_f1(spam_y, (spam >= 0.5).astype(int)),
        "civic_false_flag_rate": round(float(civic.mean()), 4),
        "civic_false_flags": int(civic.sum()),
        "dvc_faq_dev": _false_flags(mod, dvc_dev),
        "dvc_faq_all": _false_flags(mod, dvc_all),
    }


def moderation(embedder: Embedder, progress: Progress, quick: bool = False, e5: bool = True) -> dict[str, Any]:
    """Train both heads (TF-IDF; the abuse head also with e5 unless ``e5=False``) and the baselines.

    The e5 variant encodes ~27,000 texts: minutes on a fast CPU, hours on a slow AVX2-only one, so it
    can be left out (``python -m benchmarks.moderation --no-e5``); the shipped moderator is TF-IDF only.
    """
    limit = 2000 if quick else None
    data = load_data(data_dir(), limit=limit)
    old = load_data(data_dir(), limit=limit, dvc_faq=False)
    dev_x, dev_y = data.vihsd_dev
    spam_x, spam_y = data.vispam_dev[0], [int(v) for v in data.vispam_dev[1]]
    civic = data.civic_held_out
    dvc_dev = _dvc_faq("dev", 100 if quick else None)
    dvc_all = _dvc_faq("train", 300 if quick else None) + dvc_dev
    progress(f"moderation: {data.sizes()}; segmenting")
    warm_segmentation(data.abuse_texts + data.spam_texts + dev_x + spam_x + civic + data.civic_calibration + dvc_all)

    progress("moderation: training the previous moderator (no dvc_faq, thresholds 0.5)")
    t = time.perf_counter()
    previous = Moderator().fit(old.abuse_texts, old.abuse_labels, old.spam_texts, old.spam_labels)
    previous_fit_s = time.perf_counter() - t

    progress("moderation: training the moderator (TF-IDF heads, dvc_faq negatives, calibrated thresholds)")
    t = time.perf_counter()
    mod = Moderator().fit(data.abuse_texts, data.abuse_labels, data.spam_texts, data.spam_labels)
    mod.calibrate(data.civic_calibration, max_false_flag_rate=DEFAULT_MAX_FALSE_FLAG_RATE)
    fit_s = time.perf_counter() - t

    progress("moderation: baselines")
    t = time.perf_counter()
    base_abuse = Baseline().fit(data.abuse_texts, data.abuse_labels)
    base_spam = Baseline().fit(data.spam_texts, [str(v) for v in data.spam_labels])
    base_fit_s = time.perf_counter() - t

    def base_pred(model: Baseline, texts: list[str]) -> np.ndarray:
        return np.asarray(model.classes_)[model.scores(texts).argmax(axis=1)]

    base_flags = np.isin(base_pred(base_abuse, civic), ABUSIVE) | (base_pred(base_spam, civic) == "1")
    base_dvc_dev = np.isin(base_pred(base_abuse, dvc_dev), ABUSIVE) | (base_pred(base_spam, dvc_dev) == "1")

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

    assert mod.calibration_ is not None
    return {
        "dataset": "ViHSD / ViSpamReviews dev + held-out civic texts + dvc_faq (portal FAQ) questions",
        "protocol": (
            "train -> dev (train splits + civic negatives as clean / not spam); thresholds chosen on the civic "
            "calibration texts (civic held-out + dvc_faq train questions of 25 % of its procedures), never on dev"
        ),
        "data": data.sizes(),
        "thresholds": {"abuse": mod.abuse_threshold, "spam": mod.spam_threshold},
        "calibration": mod.calibration_,
        "router": {
            **_civic_and_dev(mod, data, dvc_dev, dvc_all),
            "vihsd_macro_f1_with_e5": e5_f1,  # None: not measured in this run
            "fit_seconds": round(fit_s, 1),
            "one_text_p50_ms": round(statistics.median(one), 2),
        },
        "previous": {
            **_civic_and_dev(previous, old, dvc_dev, dvc_all),
            "fit_seconds": round(previous_fit_s, 1),
            "note": "the moderator as built before issue 21: no dvc_faq negatives, thresholds 0.5",
        },
        "baseline": {
            "vihsd_macro_f1": _macro(dev_y, base_pred(base_abuse, dev_x)),
            "vispam_spam_f1": _spam_f1(spam_y, base_pred(base_spam, spam_x).astype(int)),
            "civic_false_flag_rate": round(float(base_flags.mean()), 4),
            "civic_false_flags": int(base_flags.sum()),
            "dvc_faq_dev_false_flag_rate": round(float(base_dvc_dev.mean()), 4) if dvc_dev else None,
            "fit_seconds": round(base_fit_s, 1),
        },
        "n_civic_held_out": len(civic),
        "n_dvc_faq": {"dev": len(dvc_dev), "all": len(dvc_all)},
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
