"""Routing on real citizens' questions: cold start, supervised on every source, leave-one-source-out.

Sources (all public, in ../shared/data): the portal FAQ (`dvc_faq`, train/dev, 12 ministries), the
Zalo legal questions with their issuing ministry, PubHealthQA (every question is Bộ Y tế's), and
the catalogue's procedure names as weak labels. Evaluation is at ministry level: a unit (Cục Thuế,
BHXH) counts as its ministry, on both sides. In the same run: the previous router (descriptions
only, no catalogue) and the naive catalogue anchor (character TF-IDF nearest procedures, vote by
issuing ministry), so the ratios hold on a noisy machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from benchmarks.common import data_dir, load
from triage.nlp.agencies import AgencyRegistry, default_registry
from triage.nlp.agency_router import AgencyRouter, ColdStartRouter, shared_procedure_router
from triage.nlp.catalogue import default_catalogue
from triage.nlp.embed import Embedder
from triage.nlp.evaluation import routing_metrics
from triage.nlp.io import read_jsonl
from triage.nlp.locality import decide_locality
from triage.nlp.router import Router

Say = Callable[[str], None]
SOURCES = ("zalo", "dvc_faq", "pubhealthqa")
# TRIAGE_COLD_START_WEIGHT for a channel whose wording no label has seen yet (the default, 0.35, is
# for routers trained on the clerks' own reviews of the same stream). Chosen on public train splits
# only: the weight whose worst margin over cold start alone and supervised alone (top-1 and top-3)
# is largest when each source is held out in turn, the portal FAQ's train part standing for it
# (0.7: -0.021, 0.8: -0.012, 0.85: -0.006, 0.9: -0.006; at 0.85 top-3 ties or beats both everywhere).
# Re-measured after the emulation oversight and the abbreviation expansion improved the cold start:
# 0.8: -0.015, 0.85: -0.007, 0.9: -0.002. Within two questions of each other, so 0.85 stays.
NEW_WORDING_WEIGHT = 0.85


def _metrics(proba: np.ndarray, classes: np.ndarray, gold: list[str]) -> dict[str, float]:
    m = routing_metrics(proba, classes, gold)
    return {k: round(float(m[k]), 4) for k in ("top1", "top3", "ece", "macro_f1") if k in m}


def _roll(proba: np.ndarray, classes: np.ndarray, registry: AgencyRegistry) -> tuple[np.ndarray, np.ndarray]:
    roots = sorted({registry.root(str(c)).code for c in classes})
    col = {c: j for j, c in enumerate(roots)}
    out = np.zeros((proba.shape[0], len(roots)))
    for j, c in enumerate(classes):
        out[:, col[registry.root(str(c)).code]] += proba[:, j]
    return out, np.asarray(roots)


def naive_anchor(texts: list[str], registry: AgencyRegistry, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The issue's anchor: nearest central procedures by character TF-IDF, similarity-weighted vote."""
    procs = [p for p in default_catalogue().procedures if p.level == "central" and p.agency in registry]
    owners = [registry.root(p.agency).code for p in procs]
    classes = np.asarray(sorted(set(owners)))
    col = {c: j for j, c in enumerate(classes)}
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    docs = vec.fit_transform([p.name for p in procs])
    sim = (vec.transform(texts) @ docs.T).toarray()
    proba = np.full((len(texts), len(classes)), 1e-6)
    for i in range(len(texts)):
        for j in np.argsort(-sim[i])[:k]:
            proba[i, col[owners[j]]] += sim[i, j]
    return proba / proba.sum(axis=1, keepdims=True), classes


def _sources(registry: AgencyRegistry) -> dict[str, tuple[list[str], list[str]]]:
    def rows(rel: str, field: str | None, fixed: str | None = None) -> tuple[list[str], list[str]]:
        data = load(rel)
        labels = [fixed or registry.root(registry.resolve(str(r[field])).code).code for r in data]  # type: ignore[index]
        return [str(r["text"]) for r in data], labels

    return {
        "zalo": rows("zalo_legal/agency_train.jsonl", "agency"),
        "dvc_faq": rows("dvc_faq/train.jsonl", "agency"),
        "dvc_faq_dev": rows("dvc_faq/dev.jsonl", "agency"),
        "pubhealthqa": rows("pubhealthqa/train.jsonl", None, "BYT"),
    }


def _catalogue_weak(registry: AgencyRegistry) -> tuple[list[str], list[str]]:
    procs = [p for p in default_catalogue().procedures if p.level == "central" and p.agency in registry]
    return [p.name for p in procs], [registry.root(p.agency).code for p in procs]


def _train(embedder: Embedder, parts: list[tuple[list[str], list[str], np.ndarray]]) -> Router:
    texts = [t for p in parts for t in p[0]]
    labels = [y for p in parts for y in p[1]]
    emb = np.concatenate([p[2] for p in parts])
    return Router(embedder=embedder).fit(texts, labels, embeddings=emb)


def _catalogue_labels(registry: AgencyRegistry, rel: str, labels: list[str]) -> list[str]:
    """The portal's labels, except where the question's own procedure is in the July 2026 catalogue
    under another ministry: then that ministry (the FAQ was published in May 2025, under the old
    ministries' accounts; Bộ TT&TT's press and publishing questions, for one, now belong to Bộ VHTTDL)."""
    issuer = {
        str(r["code"]): str(r["issuing_body"])
        for r in read_jsonl(data_dir() / "dvc_catalog" / "procedures.jsonl")
        if r.get("level") == "central"
    }
    out = []
    for row, label in zip(load(rel), labels, strict=True):
        body = issuer.get(str(row.get("procedure_code")))
        out.append(registry.root(registry.resolve(body).code).code if body else label)
    return out


def _locality_sample() -> tuple[list[str], list[bool], str]:
    """Hand-labelled probes (benchmarks/data/locality.jsonl) plus every portal FAQ and Zalo question naming
    a province: each was answered by a ministry or from a national law, so each is a policy question."""
    from pathlib import Path

    own = list(read_jsonl(Path(__file__).resolve().parent / "data" / "locality.jsonl"))
    texts = [str(r["text"]) for r in own]
    labels = [bool(r["local"]) for r in own]
    registry = default_registry()
    asked = [
        str(r["text"])
        for rel in ("dvc_faq/train.jsonl", "dvc_faq/dev.jsonl", "zalo_legal/agency_train.jsonl")
        for r in load(rel)
    ]
    faq = [t for t in asked if registry.find_provinces(t)]
    note = f"{len(own)} hand-labelled probes + {len(faq)} portal FAQ and Zalo questions naming a province (policy)"
    return texts + faq, labels + [False] * len(faq), note


def real_routing(embedder: Embedder, say: Say, quick: bool = False) -> dict[str, Any]:
    registry = default_registry()
    data_dir()
    src = _sources(registry)
    if quick:
        src = {k: (v[0][:120], v[1][:120]) for k, v in src.items()}
    say("encoding the sources")
    emb = {k: embedder.encode(v[0]) for k, v in src.items()}
    weak_texts, weak_labels = _catalogue_weak(registry)
    procedure_router = shared_procedure_router(embedder, registry)
    cat_emb = procedure_router.doc_embeddings_
    assert cat_emb is not None and len(cat_emb) == len(weak_texts)
    weak = (weak_texts, weak_labels, cat_emb)
    cold_desc = ColdStartRouter(registry=registry, embedder=embedder).fit()
    cold = AgencyRouter(registry=registry, embedder=embedder, cold_start=cold_desc, catalogue=procedure_router).fit()
    # The previous router: descriptions only, not centred on the catalogue (its own instance, since the
    # routers with the catalogue centre theirs).
    previous_desc = ColdStartRouter(registry=registry, embedder=embedder).fit()
    previous = AgencyRouter(registry=registry, embedder=embedder, cold_start=previous_desc, use_catalogue=False).fit()

    dev_x, dev_y = src["dvc_faq_dev"]
    dev_e = emb["dvc_faq_dev"]
    out: dict[str, Any] = {"dataset": "dvc_faq dev (portal FAQ, 12 ministries)", "n_dev": len(dev_x)}
    say("cold start on dvc_faq dev")
    anchor_p, anchor_c = naive_anchor(dev_x, registry)
    cold_dev = cold.predict_proba(dev_x, dev_e)
    reconciled = _catalogue_labels(registry, "dvc_faq/dev.jsonl", dev_y) if not quick else dev_y
    out["cold_start"] = {
        "router": _metrics(cold_dev, cold.classes_, dev_y),
        "router_catalogue_labels": {
            "what": "the same predictions; a question whose own procedure the July 2026 catalogue files under "
            "another ministry is counted for that ministry",
            "n_relabelled": sum(a != b for a, b in zip(dev_y, reconciled, strict=True)),
            **_metrics(cold_dev, cold.classes_, reconciled),
        },
        "previous_router": _metrics(previous.predict_proba(dev_x, dev_e), previous.classes_, dev_y),
        "catalogue_anchor": _metrics(anchor_p, anchor_c, dev_y),
        "targets": {"top1": 0.70, "top3": 0.88},
    }

    say("supervised on every source")
    parts = {s: (src[s][0], src[s][1], emb[s]) for s in SOURCES}
    supervised: dict[str, Any] = {"targets": {"top1": 0.88, "top3": 0.97, "ece": 0.05}}
    blended: AgencyRouter | None = None
    # With and without the catalogue's names as weak labels: the catalogue is already the cold start's
    # expert, so in domain the weak labels count it twice; out of domain they are the only cover.
    for key, extra in (("labelled_sources", []), ("with_catalogue_weak_labels", [weak])):
        t0 = time.perf_counter()
        sup = _train(embedder, [*parts.values(), *extra])
        train_s = time.perf_counter() - t0
        mix = AgencyRouter(
            registry=registry, embedder=embedder, supervised=sup, cold_start=cold_desc, catalogue=procedure_router
        ).fit()
        sp, sc = _roll(sup.predict_proba(dev_x, dev_e), sup.classes_, registry)
        supervised[key] = {
            "trained_on": "zalo + dvc_faq train + pubhealthqa" + (" + catalogue names (weak)" if extra else ""),
            "n_train": sup.n_train_,
            "train_seconds": round(train_s, 1),
            "router_blended": _metrics(mix.predict_proba(dev_x, dev_e), mix.classes_, dev_y),
            "supervised_alone": _metrics(sp, sc, dev_y),
        }
        if blended is None:  # the latency probe uses the router trained on labelled sources
            blended = mix
    assert blended is not None
    out["supervised"] = supervised

    say("leave one source out")
    loso: dict[str, Any] = {}
    for held in SOURCES:
        test_x, test_y, test_e = (dev_x, dev_y, dev_e) if held == "dvc_faq" else parts[held]
        others = [parts[s] for s in SOURCES if s != held]
        model = _train(embedder, [*others, weak])
        mix = AgencyRouter(
            registry=registry, embedder=embedder, supervised=model, cold_start=cold_desc, catalogue=procedure_router
        ).fit()
        leaning = AgencyRouter(
            registry=registry,
            embedder=embedder,
            supervised=model,
            cold_start=cold_desc,
            catalogue=procedure_router,
            cold_start_weight=NEW_WORDING_WEIGHT,
        ).fit()
        p, c = _roll(model.predict_proba(test_x, test_e), model.classes_, registry)
        loso[held] = {
            "n_test": len(test_x),
            "test": "dvc_faq dev" if held == "dvc_faq" else held,
            "cold_start": _metrics(cold.predict_proba(test_x, test_e), cold.classes_, test_y),
            "supervised_alone": _metrics(p, c, test_y),
            "blended": _metrics(mix.predict_proba(test_x, test_e), mix.classes_, test_y),
            "blended_new_wording": _metrics(leaning.predict_proba(test_x, test_e), leaning.classes_, test_y),
        }
    out["leave_one_source_out"] = loso
    out["new_wording_weight"] = NEW_WORDING_WEIGHT

    say("latency per submission")
    probe = dev_x[:60] if quick else dev_x[:200]

    def p95(router: AgencyRouter) -> tuple[float, float]:
        times = []
        for text in probe:
            t = time.perf_counter()
            router.suggest([text], k=3)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        return round(statistics.median(times), 2), round(times[int(0.95 * (len(times) - 1))], 2)

    for router in (blended, previous):  # warm both
        router.suggest(probe[:5], k=3)
    b_med, b_p95 = p95(blended)
    o_med, o_p95 = p95(previous)
    out["latency_ms"] = {
        "what": "one submission: encode + catalogue + descriptions + supervised + locality (suggest, k=3)",
        "blended_median": b_med,
        "blended_p95": b_p95,
        "previous_median": o_med,
        "previous_p95": o_p95,
        "ratio_p95": round(b_p95 / o_p95, 2),
        "target_p95": 15.0,
    }

    say("local matter or policy question")
    texts, local, note = _locality_sample()
    pred = [decide_locality(t, registry).local for t in texts]
    tp = sum(p and g for p, g in zip(pred, local, strict=True))
    fp = sum(p and not g for p, g in zip(pred, local, strict=True))
    fn = sum(g and not p for p, g in zip(pred, local, strict=True))
    out["locality"] = {
        "sample": note,
        "n": len(texts),
        "n_local": sum(local),
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "naive_precision": round(sum(local) / sum(bool(registry.find_provinces(t)) for t in texts), 4),
    }
    return out
