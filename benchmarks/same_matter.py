"""Same matter or same subject: the shipped same-matter scorer against the raw cosine and TF-IDF.

*Pairs* (public splits the scorer never saw):
- ``dvc_faq`` dev: every pair of dev questions of the same ministry; same related procedure = same
  matter, another procedure = not (the split is by procedure, so no dev procedure is in training);
- vnPara: the held-out half of the benchmark split (seed 0; the scorer is fitted on the other half).
ROC-AUC of P(same matter), of the e5 cosine and of TF-IDF cosine (syllable 1-2 grams, fitted on the
pair texts, as ``benchmarks.duplicates``) in the same run; precision / recall of each at its product
threshold (the scorer's duplicate threshold, cosine's ``duplicate_threshold``, TF-IDF's best-F1 cut on
vnPara's calibration half).

*Intake*: every distinct public ``dvc_faq`` question (train + dev; each its own request) filed through
``triage.cases.intake.receive`` with the product's pipeline (real encoder, real SQLite database,
the case index, campaigns on), once per scorer: how many got a likely-duplicate flag and how many
campaigns formed (the target: <= 2 % and none), and the added per-submission cost of re-scoring.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from benchmarks.common import cached_embeddings, data_dir
from benchmarks.duplicates import best_f1_threshold
from training.same_matter import dvc_rows, procedure_pairs, vnpara_halves
from triage.nlp.embed import Embedder
from triage.nlp.same_matter import SameMatterScorer, load_same_matter

Progress = Callable[[str], None]
COSINE_THRESHOLD = 0.9298  # the product's duplicate_threshold in cosine mode


def _at(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    pred = (scores >= threshold).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    return {
        "threshold": round(float(threshold), 4),
        "precision": round(float(p), 4),
        "recall": round(float(r), 4),
        "f1": round(float(f), 4),
        "flagged": int(pred.sum()),
    }


def _tfidf(a: list[str], b: list[str]) -> np.ndarray:
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(a + b)
    return np.asarray(vec.transform(a).multiply(vec.transform(b)).sum(axis=1)).ravel()


def _pairs_report(
    name: str,
    a: list[str],
    b: list[str],
    ea: np.ndarray,
    eb: np.ndarray,
    y: np.ndarray,
    scorer: SameMatterScorer,
    tfidf_threshold: float,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    proba = scorer.predict_proba(list(zip(a, b, strict=True)), embeddings=(ea, eb))[:, 1]
    per_pair_ms = (time.perf_counter() - t0) / len(a) * 1000
    cosine = (ea * eb).sum(axis=1)
    tf = _tfidf(a, b)
    out: dict[str, Any] = {
        "pairs": len(y),
        "same_matter_pairs": int(y.sum()),
        "same_matter": {
            "roc_auc": round(float(roc_auc_score(y, proba)), 4),
            "at_duplicate_threshold": _at(proba, y, scorer.threshold_),
            "ms_per_pair_batched": round(per_pair_ms, 3),
        },
        "cosine": {
            "roc_auc": round(float(roc_auc_score(y, cosine)), 4),
            "at_duplicate_threshold": _at(cosine, y, COSINE_THRESHOLD),
        },
        "tfidf": {
            "roc_auc": round(float(roc_auc_score(y, tf)), 4),
            "at_duplicate_threshold": _at(tf, y, tfidf_threshold),
        },
    }
    out["beats_baselines"] = bool(
        out["same_matter"]["roc_auc"] > max(out["cosine"]["roc_auc"], out["tfidf"]["roc_auc"])
    )
    _ = name
    return out


def file_through_intake(
    texts: list[str], embedder: Embedder, scorer_mode: str, say: Progress, database: Path
) -> dict[str, Any]:
    """File ``texts`` as citizens' questions through the real intake path; count flags and campaigns."""
    from sqlalchemy import func, select

    from triage.cases.intake import NewSubmission, receive
    from triage.cases.pipeline import Pipeline
    from triage.config import Settings
    from triage.store.case_index import CaseIndex
    from triage.store.db import Database, init_db
    from triage.store.tables import Campaign, Case

    url = f"sqlite:///{database}"
    mode: Literal["same_matter", "cosine"] = "cosine" if scorer_mode == "cosine" else "same_matter"
    settings = Settings(database_url=url, duplicate_scorer=mode)
    db = Database(url)
    init_db(db)
    index = CaseIndex(db)
    pipeline = Pipeline.from_settings(settings, embedder=embedder, similar=index)
    t0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
    flagged = 0
    scoring_ms: list[float] = []
    total_ms: list[float] = []
    examples: list[dict[str, Any]] = []
    judge = pipeline.judge
    last: dict[str, float] = {}

    def timed_judge(text: str, embedding: np.ndarray, hits: list[tuple[int, float]], known: Any = None) -> Any:
        start = time.perf_counter()
        out = judge(text, embedding, hits, known)
        last["ms"] = (time.perf_counter() - start) * 1000
        return out

    pipeline.judge = timed_judge  # type: ignore[method-assign]
    for i, text in enumerate(texts):
        last["ms"] = 0.0
        start = time.perf_counter()
        receipt = receive(
            db,
            NewSubmission(kind="kien_nghi", submitter_type="citizen", title=text[:200], content=text),
            pipeline=pipeline,
            now=t0 + timedelta(minutes=2 * i),  # all within one week: every campaign window is open
        )
        total_ms.append((time.perf_counter() - start) * 1000)
        scoring_ms.append(last["ms"])
        with db.read() as s:
            case = s.get(Case, receipt.case_id)
            sug = case.suggestion if case is not None else None
        if sug and sug.get("likely_duplicate"):
            flagged += 1
            if len(examples) < 5:
                top = max(
                    sug["similar"], key=lambda c: c["probability"] if c["probability"] is not None else c["score"]
                )
                examples.append({"case_id": receipt.case_id, "similar": top})
        if (i + 1) % 250 == 0:
            say(f"same-matter intake ({scorer_mode}): {i + 1}/{len(texts)}, {flagged} flagged")
    with db.read() as s:
        campaigns = int(s.scalar(select(func.count()).select_from(Campaign)) or 0)
        listed = int(
            s.scalar(select(func.count()).select_from(Campaign).where(Campaign.size >= settings.campaign_min_size)) or 0
        )
        grouped = int(s.scalar(select(func.count()).select_from(Case).where(Case.campaign_id.is_not(None))) or 0)
    db.dispose()
    return {
        "scorer": scorer_mode,
        "submissions": len(texts),
        "likely_duplicates": flagged,
        "likely_duplicate_rate": round(flagged / len(texts), 4),
        "campaign_groups": campaigns,
        "campaigns_listed": listed,
        "cases_in_campaigns": grouped,
        "duplicate_threshold": pipeline.duplicate_threshold,
        "campaign_threshold": None if pipeline.campaigns is None else pipeline.campaigns.threshold,
        "judge_ms_p50": round(statistics.median(scoring_ms), 2),
        "intake_ms_p50": round(statistics.median(total_ms), 2),
        "first_flags": examples,
    }


def same_matter(embedder: Embedder, say: Progress, quick: bool = False) -> dict[str, Any]:
    shared = data_dir()
    scorer = load_same_matter(None, embedder=embedder)
    calib, held = vnpara_halves(shared)

    say("same-matter: dvc_faq dev pairs")
    dev = dvc_rows(shared, "dev")
    dv = cached_embeddings(embedder, [r["text"] for r in dev], embedder.encode)
    pp = np.asarray(procedure_pairs(dev, every_negative=True))
    i, j, y = pp[:, 0], pp[:, 1], pp[:, 2]
    # TF-IDF's product-like cut: best F1 on vnPara's calibration half (as benchmarks.duplicates).
    ca, cb = [c[0] for c in calib], [c[1] for c in calib]
    tf_threshold = best_f1_threshold(_tfidf(ca, cb), np.asarray([c[2] for c in calib]))
    dvc = _pairs_report(
        "dvc_faq",
        [dev[k]["text"] for k in i],
        [dev[k]["text"] for k in j],
        dv[i],
        dv[j],
        y,
        scorer,
        tf_threshold,
    )

    say("same-matter: vnPara held-out half")
    a, b = [h[0] for h in held], [h[1] for h in held]
    ea = cached_embeddings(embedder, a, embedder.encode)
    eb = cached_embeddings(embedder, b, embedder.encode)
    vn = _pairs_report("vnpara", a, b, ea, eb, np.asarray([h[2] for h in held]), scorer, tf_threshold)

    texts = list(dict.fromkeys(r["text"] for split in ("train", "dev") for r in dvc_rows(shared, split)))
    if quick:
        texts = texts[:300]
    intake = {}
    for mode in ("same_matter", "cosine"):
        say(f"same-matter: filing {len(texts)} dvc_faq questions through intake ({mode})")
        with tempfile.TemporaryDirectory() as tmp:
            intake[mode] = file_through_intake(texts, embedder, mode, say, Path(tmp) / "intake.db")
    card = getattr(scorer, "card_", {})
    return {
        "dataset": "dvc_faq dev (same procedure vs same ministry, other procedure); vnPara held-out half; "
        "dvc_faq train + dev questions through intake",
        "scorer": {
            "file": "triage/data/same_matter.npz",
            "encoder": scorer.model_id_,
            "duplicate_threshold": round(scorer.threshold_, 4),
            "duplicate_precision_target": scorer.precision_,
            "campaign_threshold": round(scorer.campaign_threshold_, 4),
            "campaign_precision_target": card.get("campaign_precision"),
            "trained_on": card.get("trained_on"),
        },
        "dvc_faq_dev": dvc,
        "vnpara_held_out": vn,
        "intake": intake,
        "targets": {
            "dvc_faq_dev_auc_0.92": dvc["same_matter"]["roc_auc"] >= 0.92 and dvc["beats_baselines"],
            "vnpara_auc_0.995": vn["same_matter"]["roc_auc"] >= 0.995 and vn["beats_baselines"],
            "intake_flags_2pct": intake["same_matter"]["likely_duplicate_rate"] <= 0.02,
            "intake_no_campaign": intake["same_matter"]["campaigns_listed"] == 0,
        },
    }


if __name__ == "__main__":
    import json
    import sys

    from benchmarks.common import write_result
    from triage.config import get_settings
    from triage.nlp.embed import OnnxEmbedder, default_encoder_path

    settings = get_settings()
    folder = settings.encoder_path or default_encoder_path(settings.model_dir)
    quick = "--quick" in sys.argv
    result = same_matter(
        OnnxEmbedder(folder, threads=settings.encoder_threads), lambda m: print(m, file=sys.stderr, flush=True), quick
    )
    result["quick"] = quick
    if not quick:
        write_result("same_matter", result)
    print(json.dumps(result, indent=1, ensure_ascii=False))
