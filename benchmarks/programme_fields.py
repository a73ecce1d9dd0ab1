"""Resolution-57 programme fields: the zero-shot classifier on hand-written and real public texts.

There is no public data labelled with the Resolution 57-NQ/TW task groups, so the measurement is in
two parts, and says so:

* **Accuracy** on a small sample written by hand for this purpose (``tests/fixtures/
  programme_fields_sample.jsonl``: ten short submissions per group, "other" included). It is a sanity
  figure on our own phrasing, not an estimate of accuracy on real submissions.
* **"Other" rate** on real questions nobody here wrote: the public-service portal's FAQ, dev split
  (``dvc_faq/dev.jsonl``: land, residence, military service, ...). Questions answered by ministries
  other than Science and Technology should mostly go to "other"; the Ministry of Science and
  Technology's (IP, telecoms, radio frequencies, standards) are reported apart, since some of them are
  legitimately S&T matters.

The classifier's margin, floor and lexical weight are chosen here by a small grid on data kept apart
from both: the FAQ *train* split (non-S&T ministries: should be "other") and a second hand-written
sample (``benchmarks/data/programme_fields_dev.jsonl``), maximising the mean of the dev sample's S&T
accuracy and the FAQ train "other" rate. The baseline is the same decision rule on character TF-IDF
similarity alone (no embeddings), tuned on the same grid.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from benchmarks.common import load
from triage.nlp.embed import Embedder
from triage.nlp.io import read_jsonl
from triage.nlp.programme_fields import ProgrammeFieldClassifier, default_taxonomy
from triage.nlp.text import normalize

ROOT = Path(__file__).resolve().parents[1]
TEST_SAMPLE = ROOT / "tests" / "fixtures" / "programme_fields_sample.jsonl"
DEV_SAMPLE = ROOT / "benchmarks" / "data" / "programme_fields_dev.jsonl"
SCIENCE_MINISTRY = "Bộ Khoa học và Công nghệ"
GRID = {
    "lexical_weight": (0.0, 0.1, 0.2, 0.3),
    "other_margin": tuple(round(x, 3) for x in np.arange(0.0, 0.0501, 0.005)),
    "threshold": (0.0, 0.9, 0.92, 0.93, 0.94),
}
TEMPERATURES = (0.005, 0.01, 0.015, 0.02, 0.03, 0.05)
LATENCY_PASSES = 5


def _sample(path: Path) -> tuple[list[str], list[str]]:
    rows = list(read_jsonl(path))
    return [normalize(r["text"]) for r in rows], [r["field"] for r in rows]


def _decide(sim: np.ndarray, other: int, margin: float, floor: float) -> np.ndarray:
    s = sim.copy()
    s[:, other] = np.maximum(s[:, other] + margin, floor)
    return s


def _tune(
    fit: Callable[[float], ProgrammeFieldClassifier],
    dev: tuple[list[str], list[str], np.ndarray | None],
    faq: tuple[list[str], np.ndarray | None],
    lexical_weights: tuple[float, ...],
) -> dict[str, Any]:
    """The grid point with the best mean of dev S&T accuracy and FAQ-train "other" rate.

    Ties go to the higher S&T accuracy, then the smaller margin, then the higher floor (the safety net
    for texts close to nothing at all, free when it changes nothing here).
    """
    dx, dy, de = dev
    fx, fe = faq
    gold = np.asarray(dy)
    st = gold != default_taxonomy().other
    best: tuple[Any, ...] | None = None
    for lw in lexical_weights:
        clf = fit(lw)
        o = clf.other_index_
        sd, sf = clf.similarity(dx, de), clf.similarity(fx, fe)
        for m in GRID["other_margin"]:
            for floor in GRID["threshold"]:
                pd_ = clf.classes_[_decide(sd, o, m, floor).argmax(1)]
                pf = clf.classes_[_decide(sf, o, m, floor).argmax(1)]
                st_acc = float(np.mean(pd_[st] == gold[st]))
                other_rate = float(np.mean(pf == clf.classes_[o]))
                key = ((st_acc + other_rate) / 2, st_acc, -m, floor)
                if best is None or key > best[0]:
                    best = (key, lw, m, floor, st_acc, other_rate)
    assert best is not None
    key, lw, m, floor, st_acc, other_rate = best
    return {
        "lexical_weight": lw,
        "other_margin": m,
        "threshold": floor,
        "objective": round(key[0], 4),
        "dev_st_accuracy": round(st_acc, 4),
        "faq_train_other_rate": round(other_rate, 4),
    }


def _temperature(clf: ProgrammeFieldClassifier, x: list[str], y: list[str], emb: np.ndarray | None) -> float:
    """The temperature with the lowest class-balanced log loss (S&T vs other) on the tuning data."""
    from triage.nlp.router import softmax

    scores = clf.decision_function(x, emb)
    col = np.asarray([list(clf.classes_).index(v) for v in y])
    is_other = np.asarray(y) == clf.classes_[clf.other_index_]
    w = np.where(is_other, 1.0 / max(is_other.sum(), 1), 1.0 / max((~is_other).sum(), 1))
    losses = {}
    for t in TEMPERATURES:
        p = softmax(scores / t)[np.arange(len(y)), col]
        losses[t] = float(-(w * np.log(p + 1e-12)).sum() / w.sum())
    return min(losses, key=lambda t: losses[t])


def _evaluate(clf: ProgrammeFieldClassifier, test: tuple[list[str], list[str], np.ndarray | None],
              faq_dev: tuple[list[str], list[str], np.ndarray | None]) -> dict[str, Any]:  # fmt: skip
    tx, ty, te = test
    proba = clf.predict_proba(tx, te)
    classes = list(clf.classes_)
    pred = np.asarray(classes)[proba.argmax(1)]
    gold = np.asarray(ty)
    other = classes[clf.other_index_]
    st = gold != other
    top3 = float(np.mean([g in {classes[j] for j in np.argsort(-row)[:3]} for g, row in zip(gold, proba, strict=True)]))
    per_group = {c: round(float(np.mean(pred[gold == c] == c)), 2) for c in classes if (gold == c).any()}
    confusion = Counter(f"{g} -> {p}" for g, p in zip(gold, pred, strict=True) if g != p)
    fx, fa, fe = faq_dev
    fpred = np.asarray(classes)[clf.predict_proba(fx, fe).argmax(1)]
    agencies = np.asarray(fa)
    non_st = agencies != SCIENCE_MINISTRY
    by_agency = {
        a: {"n": int((agencies == a).sum()), "other_rate": round(float(np.mean(fpred[agencies == a] == other)), 3)}
        for a in sorted(set(fa))
    }
    return {
        "test_sample": {
            "accuracy": round(float(np.mean(pred == gold)), 4),
            "macro_f1": round(float(f1_score(gold, pred, average="macro")), 4),
            "top3": round(top3, 4),
            "st_accuracy": round(float(np.mean(pred[st] == gold[st])), 4),
            "other_recall": round(float(np.mean(pred[~st] == other)), 4),
            "st_sent_to_other": round(float(np.mean(pred[st] == other)), 4),
            "per_group_accuracy": per_group,
            "errors": dict(confusion.most_common()),
        },
        "faq_dev": {
            "other_rate_non_st_ministries": round(float(np.mean(fpred[non_st] == other)), 4),
            "n_non_st": int(non_st.sum()),
            "other_rate_science_ministry": round(float(np.mean(fpred[~non_st] == other)), 4),
            "n_science_ministry": int((~non_st).sum()),
            "non_st_predicted": dict(Counter(fpred[non_st].tolist()).most_common()),
            "by_agency": by_agency,
        },
    }


def programme_fields(embedder: Embedder, say: Callable[[str], None], quick: bool = False) -> dict[str, Any]:
    """Tune on dvc_faq train + the dev sample, then measure on the hand-written test sample and dvc_faq dev."""
    taxonomy = default_taxonomy()
    faq_train = [r for r in load("dvc_faq/train.jsonl") if r["agency"] != SCIENCE_MINISTRY]
    faq_dev = load("dvc_faq/dev.jsonl")
    if quick:
        faq_train, faq_dev = faq_train[:200], faq_dev[:80]
    dx, dy = _sample(DEV_SAMPLE)
    tx, ty = _sample(TEST_SAMPLE)
    fx = [r["text"] for r in faq_train]
    vx, va = [r["text"] for r in faq_dev], [r["agency"] for r in faq_dev]
    say("programme fields: encoding")
    de, fe, te, ve = (embedder.encode(x) for x in (dx, fx, tx, vx))

    say("programme fields: tuning on dvc_faq train + the dev sample")
    tuned = _tune(
        lambda lw: ProgrammeFieldClassifier(taxonomy=taxonomy, embedder=embedder, lexical_weight=lw).fit(),
        (dx, dy, de),
        (fx, fe),
        GRID["lexical_weight"],
    )
    clf = ProgrammeFieldClassifier(
        taxonomy=taxonomy,
        embedder=embedder,
        lexical_weight=tuned["lexical_weight"],
        other_margin=tuned["other_margin"],
        threshold=tuned["threshold"],
    ).fit()
    tuned["temperature"] = _temperature(clf, dx + fx, dy + [taxonomy.other] * len(fx), np.vstack([de, fe]))
    default = ProgrammeFieldClassifier()
    defaults = {k: getattr(default, k) for k in ("lexical_weight", "other_margin", "threshold", "temperature")}

    say("programme fields: TF-IDF-only baseline, tuned the same way")
    base_tuned = _tune(
        lambda lw: ProgrammeFieldClassifier(taxonomy=taxonomy, embedder=None, lexical_weight=1.0).fit(),
        (dx, dy, None),
        (fx, None),
        (1.0,),
    )
    base = ProgrammeFieldClassifier(
        taxonomy=taxonomy,
        embedder=None,
        lexical_weight=1.0,
        other_margin=base_tuned["other_margin"],
        threshold=base_tuned["threshold"],
    ).fit()

    say("programme fields: measuring (defaults of the shipped classifier)")
    shipped = ProgrammeFieldClassifier(taxonomy=taxonomy, embedder=embedder).fit()
    shipped.predict_top_k(tx[:1], k=3, embeddings=te[:1])  # warm-up
    times = []
    for _ in range(LATENCY_PASSES):  # one text at a time, as intake calls it; the embedding is given
        for i, text in enumerate(tx):
            t = time.perf_counter()
            shipped.predict_top_k([text], k=3, embeddings=te[i : i + 1])
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "dataset": "hand-written Resolution-57 sample + dvc_faq dev (real, no S&T labels)",
        "protocol": "zero-shot; tuned on dvc_faq train + a separate hand-written dev sample; test sample unseen",
        "note": "The test sample (tests/fixtures/programme_fields_sample.jsonl) was written by hand for this "
        "benchmark: its accuracy is a sanity figure on our own phrasing, not on real submissions.",
        "taxonomy": {"programme": taxonomy.programme, "version": taxonomy.version, "codes": list(taxonomy.codes)},
        "n_test": len(tx),
        "n_dev_sample": len(dx),
        "n_faq_train_non_st": len(fx),
        "n_faq_dev": len(vx),
        "tuned": tuned,
        "shipped_defaults": defaults,
        "defaults_match_tuning": all(defaults[k] == tuned[k] for k in defaults),
        "router": _evaluate(shipped, (tx, ty, te), (vx, va, ve)),
        "baseline": {"tuned": base_tuned, **_evaluate(base, (tx, ty, None), (vx, va, None))},
        "baseline_is": "character TF-IDF similarity to the descriptions only, same decision rule, tuned the same way",
        "latency_ms_given_embedding": {
            "p50": round(statistics.median(times), 3),
            "p95": round(times[int(0.95 * (len(times) - 1))], 3),
            "calls": len(times),
            "load_average_1min": round(os.getloadavg()[0], 2),
        },
    }
