"""Run every benchmark, write benchmarks/results/*.json and regenerate benchmarks/results/summary.md.

summary.md is the one place a reader finds the figures; README.md and docs/ link to it and keep none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import quality, speed
from benchmarks.answer_drafts import answer_drafts
from benchmarks.common import RESULTS, load, write_result
from benchmarks.duplicates import duplicates
from benchmarks.import_bench import import_benchmark
from benchmarks.index_scale import index_scale
from benchmarks.kpi_forecast import kpi_forecast
from benchmarks.learning_curve import learning_curve
from benchmarks.masking import masking
from benchmarks.moderation import moderation
from benchmarks.multi_host import multi_host
from benchmarks.programme_fields import programme_fields
from benchmarks.rate_limit import rate_limit
from benchmarks.routing_real import NEW_WORDING_WEIGHT, real_routing
from benchmarks.same_matter import same_matter
from benchmarks.themes_bench import themes_benchmark
from benchmarks.train_speed import train_speed
from triage.config import get_settings
from triage.errors import InvalidInput
from triage.nlp.embed import OnnxEmbedder, SentenceEmbedder, default_encoder_path

console = Console(stderr=True)
SUMMARY = RESULTS / "summary.md"
ORDER = [
    "uit_vsfc",
    "vntc",
    "vntc_train_speed",
    "pubhealthqa",
    "zalo_agency",
    "cold_start",
    "routing_real",
    "programme_fields",
    "vnpara",
    "embedding_speed",
    "router_latency",
    "learning_curve",
    "themes",
    "moderation",
    "duplicates",
    "same_matter",
    "index_scale",
    "masking",
    "kpi_forecast",
    "answer_drafts",
    "import",
    "multi_host",
    "rate_limit",
]


def main(only: list[str] | None = None, quick: bool = False) -> dict[str, Any]:
    """Run the selected benchmarks (all by default); ``quick`` uses small slices for a smoke run."""
    unknown = set(only or []) - set(ORDER)
    if unknown:
        raise InvalidInput(f"unknown benchmark(s) {sorted(unknown)}; choose from {ORDER}")
    s = get_settings()
    folder = Path(s.encoder_path) if s.encoder_path else default_encoder_path(s.model_dir)
    embedder = OnnxEmbedder(folder, threads=s.encoder_threads)

    def say(msg: str) -> None:
        console.print(f"[cyan]bench[/cyan] {msg}")

    def cap(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        return rows[:n] if quick else rows

    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "uit_vsfc": lambda: quality.train_test(
            "UIT-VSFC topic",
            embedder,
            cap(load("uit_vsfc/train.jsonl"), 2000),
            cap(load("uit_vsfc/dev.jsonl"), 500),
            "topic",
            say,
            tuned=None if quick else quality.UIT_TUNED,
            protocol="train -> dev",
        ),
        "vntc": lambda: quality.vntc(embedder, say, quick),
        "vntc_train_speed": lambda: train_speed(embedder, say, quick=quick),
        "pubhealthqa": lambda: quality.cross_validated(
            "PubHealthQA field", embedder, load("pubhealthqa/train.jsonl"), "field", say
        ),
        "zalo_agency": lambda: quality.cross_validated(
            "Zalo legal agency", embedder, load("zalo_legal/agency_train.jsonl"), "agency", say, agency=True
        ),
        "cold_start": lambda: quality.cold_start(embedder, say),
        "routing_real": lambda: real_routing(embedder, say, quick=quick),
        "programme_fields": lambda: programme_fields(embedder, say, quick=quick),
        "vnpara": lambda: quality.vnpara(embedder, None if quick else SentenceEmbedder(folder), say),
        "embedding_speed": lambda: speed.embedding_speed(folder, threads=2, quick=quick),
        "router_latency": lambda: speed.router_latency(embedder, quick=quick),
        "learning_curve": lambda: learning_curve(embedder, say, quick=quick),
        "themes": lambda: themes_benchmark(embedder, say, quick=quick),
        "moderation": lambda: moderation(embedder, say, quick=quick),
        "duplicates": lambda: duplicates(embedder, say, quick=quick),
        "same_matter": lambda: same_matter(embedder, say, quick=quick),
        "index_scale": lambda: index_scale(say, quick=quick),
        "masking": lambda: masking(say, quick=quick),
        "kpi_forecast": lambda: kpi_forecast(say, quick=quick),
        "answer_drafts": lambda: answer_drafts(embedder, say, quick=quick),
        "import": lambda: import_benchmark(embedder, say, quick=quick),
        "multi_host": lambda: multi_host(embedder, say, quick=quick),
        "rate_limit": lambda: rate_limit(say, quick=quick),
    }
    results: dict[str, Any] = {}
    for name in ORDER:
        if only and name not in only:
            continue
        say(f"running {name}")
        payload = jobs[name]()
        payload["quick"] = quick
        path = write_result(name, payload)
        results[name] = payload
        console.print(f"  -> {path}")
    if not quick:
        path = write_summary()
        console.print(f"  -> {path}")
    return results


def _get(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def summary_table() -> str:
    """A markdown table of the latest full (non-quick) results on disk."""
    lines = ["| benchmark | metric | router | TF-IDF+LinearSVC baseline |", "|---|---|---|---|"]
    for name, metrics in [
        ("uit_vsfc", ["weighted_f1", "macro_f1", "accuracy"]),
        ("vntc", ["accuracy", "macro_f1"]),
        ("pubhealthqa", ["accuracy", "macro_f1", "top3"]),
        ("zalo_agency", ["accuracy", "top3"]),
    ]:
        r = _get(name)
        if r and not r.get("quick"):
            for m in metrics:
                lines.append(f"| {r['dataset']} ({r['protocol']}) | {m} | {r['router'][m]} | {r['baseline'][m]} |")
            if "ece" in r["router"]:
                lines.append(f"| {r['dataset']} | ECE (router) | {r['router']['ece']} | |")
            tuned = r.get("router_finetuned")
            if tuned:
                n = tuned["params"].get("members", 1)
                flags = "--finetune-encoder" + (f" --members {n}" if n > 1 else "")
                for m in [*metrics, "ece"]:
                    lines.append(
                        f"| {r['dataset']}, router with the encoder fine-tuned on train (`{flags}`)"
                        f"{' (' + tuned['note'] + ')' if tuned.get('note') else ''} "
                        f"| {m} | {tuned[m]} | {r['baseline'].get(m, '')} |"
                    )
    r = _get("vntc_train_speed")
    if r and not r.get("quick"):
        per, ref = r["seconds_per_10k_texts"], r.get("reference_router_with_embedding") or {}
        whole = r["whole_file_33759_articles"]
        where = f"VNTC `triage train`, {r['n_train']:,} articles ({r['cpus']} cores)"
        lines.append(
            f"| {where} | s per 10,000 texts: segment / encode / fit = total | {per.get('segmenting', 0)} / "
            f"{per.get('encoding', 0)} / {per.get('training', 0)} = {per['total']} | whole file (33,759): "
            f"{whole['seconds']} s (target {whole['target_seconds']}) |"
        )
        lines.append(
            f"| {where}, held-out {r['n_test']:,} | accuracy | {r['router']['accuracy']} | "
            f"{r['baseline']['accuracy']} (TF-IDF + LinearSVC); with the embedding: {ref.get('accuracy', '-')} |"
        )
    r = _get("cold_start")
    if r and not r.get("quick"):
        for m in ("top1", "top3"):
            lines.append(
                f"| Zalo cold start, no labels ({r['n_candidates']} central bodies) | {m} | {r['router'][m]} | "
                f"{r['baseline'][m]} (TF-IDF to descriptions) |"
            )
    r = _get("routing_real")
    if r and not r.get("quick"):
        lines.extend(_routing_real_rows(r))
    r = _get("programme_fields")
    if r and not r.get("quick"):
        m, b = r["router"], r["baseline"]
        lines.append(
            f"| Resolution-57 fields, hand-written sample ({r['n_test']} texts, 7 classes, zero-shot) | accuracy / "
            f"macro F1 | {m['test_sample']['accuracy']} / {m['test_sample']['macro_f1']} | "
            f"{b['test_sample']['accuracy']} / {b['test_sample']['macro_f1']} (TF-IDF to descriptions) |"
        )
        lines.append(
            f"| Resolution-57 fields, dvc_faq dev, non-S&T ministries ({m['faq_dev']['n_non_st']} real questions) | "
            f"share sent to 'other' | {m['faq_dev']['other_rate_non_st_ministries']} | "
            f"{b['faq_dev']['other_rate_non_st_ministries']} |"
        )
        lines.append(
            f"| Resolution-57 fields, one text (embedding given) | p50 / p95 ms | "
            f"{r['latency_ms_given_embedding']['p50']} / {r['latency_ms_given_embedding']['p95']} | |"
        )
    r = _get("vnpara")
    if r and not r.get("quick"):
        lines.append(
            f"| vnPara `similar` | ROC-AUC | {r['router']['roc_auc']} | {r['baseline']['roc_auc']} (TF-IDF cosine) |"
        )
    r = _get("embedding_speed")
    if r and not r.get("quick"):
        lines.append(
            f"| encoder, batch 32, 2 cores | texts/s | ONNX int8 {r['onnx_int8']['texts_per_s']} | "
            f"torch fp32 {r['torch_fp32']['texts_per_s']} |"
        )
        lines.append(
            f"| encoder, one text | p50 ms | ONNX int8 {r['onnx_int8']['single_text']['p50_ms']} | "
            f"torch fp32 {r['torch_fp32']['single_text']['p50_ms']} |"
        )
        lines.append(
            f"| ONNX int8 vs fp32 | cosine mean / min | {r['cosine_onnx_vs_fp32']['mean']} / "
            f"{r['cosine_onnx_vs_fp32']['min']} | |"
        )
    r = _get("router_latency")
    if r and not r.get("quick"):
        lines.append(
            f"| agency routing, one text | p50 / p95 ms | {r['supervised_plus_cold_start']['p50_ms']} / "
            f"{r['supervised_plus_cold_start']['p95_ms']} | cold start only "
            f"{r['cold_start_only']['p50_ms']} / {r['cold_start_only']['p95_ms']} |"
        )
    r = _get("learning_curve")
    if r and not r.get("quick"):
        first, last = r["points"][0], r["points"][-1]
        for m in ("top1", "top3", "macro_f1"):
            lines.append(
                f"| learning curve, Zalo slice ({first['n_labels']} -> {last['n_labels']} reviewed labels) | {m} | "
                f"{first['router'][m]} -> {last['router'][m]} | {last['baseline'][m]} (at {last['n_labels']}) |"
            )
    r = _get("themes")
    if r and not r.get("quick") and "theme_model" in r.get("emerging", {}):
        e, ours, base = r["emerging"], r["emerging"]["theme_model"], r["emerging"]["baseline_seeded"]
        lines.append(
            f"| themes: emerging topic, VNTC stream x3 burst ({e['runs']} runs; {e['quiet_runs']} without) | "
            f"injected topic first and significant / quiet runs with a significant theme | "
            f"{ours['injected_first_and_significant']}/{e['runs']} / {ours['quiet_runs_with_any_significant']} | "
            f"{base['injected_first_and_significant']}/{e['runs']} / {base['quiet_runs_with_any_significant']} |"
        )
        sd = r["seeds"]
        lines.append(
            f"| themes: {sd['n']:,} real texts, {len(sd['seeds'])} seeds | ARI across seeds / across 90 % subsamples | "
            f"{sd['theme_model']['across_seeds']['ari_mean']} / "
            f"{sd['theme_model']['across_subsamples_90']['ari_mean']} | "
            f"{sd['baseline_seeded']['across_seeds']['ari_mean']} / "
            f"{sd['baseline_seeded']['across_subsamples_90']['ari_mean']} |"
        )
        op = r["overlapping_periods"]
        lines.append(
            f"| themes: two overlapping 12-week periods (VNTC) | ARI on the shared weeks / themes keeping their id | "
            f"{op['theme_model']['ari_on_shared_weeks']} / {op['theme_model']['kept_id_share']} | "
            f"{op['baseline_seeded']['ari_on_shared_weeks']} / - |"
        )
        vt = r["vntc_topics"]
        lines.append(
            f"| themes: NMI against the 10 VNTC topics ({vt['n']:,} articles) | NMI | {vt['theme_model']['nmi']} | "
            f"{vt['baseline_seeded']['nmi']}; BERTopic {vt.get('bertopic', {}).get('nmi', '-')} |"
        )
        pq = r["public_questions"]
        lines.append(
            f"| themes: {pq['n']:,} dvc_faq questions | NMI against catalogue field / largest theme | "
            f"{pq['theme_model']['field']['nmi']} / {100 * pq['theme_model']['field']['max_share']:.1f} % | "
            f"{pq['baseline_seeded']['field']['nmi']} / {100 * pq['baseline_seeded']['field']['max_share']:.1f} %; "
            f"BERTopic {pq.get('bertopic', {}).get('field', {}).get('nmi', '-')} |"
        )
        sc = r["scale"]
        how = " (real vectors resampled)" if sc.get("how") else ""
        lines.append(
            f"| themes: clustering {sc['n']:,} texts{how}, embeddings given | s (median of 3) | "
            f"{sc['theme_model']['cluster_s_median']} | {sc['baseline_seeded']['cluster_s_median']} |"
        )
    r = _get("moderation")
    if r and not r.get("quick"):
        m, b = r["router"], r["baseline"]
        lines.append(
            f"| moderation: ViHSD dev (clean/offensive/hate) | macro F1 | {m['vihsd_macro_f1']}"
            + ("" if m.get("vihsd_macro_f1_with_e5") is None else f" (with e5: {m['vihsd_macro_f1_with_e5']})")
            + f" | {b['vihsd_macro_f1']} |"
        )
        lines.append(f"| moderation: ViSpamReviews dev | spam F1 | {m['vispam_spam_f1']} | {b['vispam_spam_f1']} |")
        lines.append(
            f"| moderation: {r['n_civic_held_out']} held-out civic texts | false-flag rate | "
            f"{m['civic_false_flag_rate']} | {b['civic_false_flag_rate']} |"
        )
        prev = r.get("previous")
        if prev and "dvc_faq_dev" in m:
            for key, what in (("dvc_faq_dev", "dev questions"), ("dvc_faq_all", "questions (train + dev)")):
                lines.append(
                    f"| moderation: {m[key]['n']:,} dvc_faq portal {what} | false-flag rate | "
                    f"{m[key]['false_flag_rate']} | {prev[key]['false_flag_rate']} (previous moderator) |"
                )
            lines.append(
                f"| moderation: ViHSD dev, previous moderator in the same run | macro F1 | {m['vihsd_macro_f1']} | "
                f"{prev['vihsd_macro_f1']} |"
            )
    r = _get("duplicates")
    if r and not r.get("quick"):
        m, base = r["router"], r["baseline"]
        lines.append(
            f"| vnPara likely duplicate (threshold {m['threshold']} from the calibration half) | held-out P / R / F1 | "
            f"{m['held_out']['precision']} / {m['held_out']['recall']} / {m['held_out']['f1']} | "
            f"{base['held_out']['precision']} / {base['held_out']['recall']} / {base['held_out']['f1']} "
            "(TF-IDF cosine) |"
        )
        rt = r["retrieval"]
        lines.append(
            f"| vnPara retrieval, text1 -> text2 among {rt['collection']:,} ({rt['distractors']:,} distractors: "
            f"{' + '.join(rt.get('distractor_sources', {'vntc': 0}))}) | "
            f"recall@5 | {rt['recall_at_5']['paraphrase_pairs']} ({rt['index_kind']}) | "
            f"{rt['baseline_recall_at_5']['paraphrase_pairs']} (TF-IDF cosine) |"
        )
    r = _get("same_matter")
    if r and not r.get("quick"):
        for key, what in (
            ("dvc_faq_dev", "same procedure vs same ministry, other procedure, portal FAQ dev"),
            ("vnpara_held_out", "vnPara held-out half"),
        ):
            v = r[key]
            lines.append(
                f"| same matter: {what} ({v['pairs']:,} pairs) | ROC-AUC | {v['same_matter']['roc_auc']} "
                f"(same-matter scorer) | cosine {v['cosine']['roc_auc']}; TF-IDF cosine {v['tfidf']['roc_auc']} |"
            )
        sm, co = r["intake"]["same_matter"], r["intake"]["cosine"]
        lines.append(
            f"| {sm['submissions']:,} distinct portal FAQ questions filed through intake | likely-duplicate flags / "
            f"campaigns | {sm['likely_duplicates']} ({100 * sm['likely_duplicate_rate']:.1f} %) / "
            f"{sm['campaigns_listed']} (same-matter, P >= {sm['duplicate_threshold']:.3f}) | cosine >= "
            f"{co['duplicate_threshold']}: {co['likely_duplicates']} ({100 * co['likely_duplicate_rate']:.1f} %) / "
            f"{co['campaigns_listed']} |"
        )
    r = _get("index_scale")
    if r and not r.get("quick"):
        flat = next(x for x in r["rows"] if x["index"].startswith("Flat"))
        for x in r["rows"]:
            if x is flat:
                continue
            params = ", ".join(f"{k} {v}" for k, v in x["params"].items())
            lines.append(
                f"| index {r['n_vectors']:,} x {r['dimension']} ({r['real_share']:.0%} real): {x['index']}, {params} | "
                f"recall@10 / p50 / p99 ms / build s / MB | {x['recall_at_10']} / {x['p50_ms']} / {x['p99_ms']} / "
                f"{x['build_s']:.0f} / {x['bytes'] / 2**20:.0f} | exact {flat['p50_ms']} ms p50 |"
            )
    r = _get("masking")
    if r and not r.get("quick"):
        m, ner, pii = r["mask_personal"], r["ner_only"], r["mask_pii_only"]
        lines.append(
            f"| masking for analysts, hand-labelled sample ({r['n_names']} names, {r['n_addresses']} street addresses, "
            f"{r['n_texts']} texts) | recall names / addresses | {m['recall_names']} / {m['recall_addresses']} "
            f"(`mask_personal`; {r['ms_per_100_chars_p50']} ms per 100 characters) | underthesea NER alone "
            f"{ner['recall_names']} / {ner['recall_addresses']}; `mask_pii` {pii['recall_names']} / "
            f"{pii['recall_addresses']} |"
        )
    r = _get("kpi_forecast")
    if r and not r.get("quick"):
        for seen, x in r["observed_quarters"].items():
            f, strict, naive = x["forecast"], x["forecast_off_track_only"], x["naive_baseline"]
            lines.append(
                f"| KPI early warning, {r['series_per_family']} x 3 synthetic series, {seen} quarters seen | "
                f"hit rate / precision / recall | {f['hit_rate']} / {f['precision']} / {f['recall']} (off track "
                f"only: {strict['hit_rate']} / {strict['precision']} / {strict['recall']}) | naive path rule "
                f"{naive['hit_rate']} / {naive['precision']} / {naive['recall']} |"
            )
    r = _get("answer_drafts")
    if r and not r.get("quick"):
        mix, base = r["methods"]["product_mix"], r["methods"]["tfidf_baseline"]
        lines.append(
            f"| answer drafts, portal FAQ ({r['answerable_questions']:,} of {r['questions']:,} questions have another "
            f"of their procedure) | same-procedure answer cited in top 3 (answerable / all) | "
            f"{mix['top3_same_procedure_answerable']} / {mix['top3_same_procedure_all']} (encoder + TF-IDF; "
            f"target {r['target_top3']}; ceiling over all {r['ceiling_top3_all']}) | "
            f"TF-IDF {base['top3_same_procedure_answerable']} / {base['top3_same_procedure_all']} |"
        )
    return "\n".join(lines)


def summary_markdown() -> str:
    """benchmarks/results/summary.md: a title, how to refresh it, and the table of the latest full results."""
    return "\n".join(
        [
            "# Benchmark results",
            "",
            "<!-- Generated by `triage bench` (benchmarks/run.py) from benchmarks/results/*.json; do not edit. -->",
            "",
            "Every figure below comes from the JSON file of the same benchmark in this folder; the last column is",
            "what it is compared with in the same run (a TF-IDF syllable 1-2 gram + LinearSVC baseline for the",
            "quality rows). Each JSON file records its protocol, time (`run_at`) and machine. Refresh with",
            "`make bench` or `triage bench --only NAME` from a source checkout (quick runs are not shown).",
            "Speed depends on the CPU: run `triage bench --only embedding_speed` on yours.",
            "",
            summary_table(),
            "",
        ]
    )


def write_summary() -> Path:
    """Regenerate summary.md from the results on disk (the only file the benchmarks write outside *.json)."""
    SUMMARY.write_text(summary_markdown(), encoding="utf-8")
    return SUMMARY


def _routing_real_rows(r: dict[str, Any]) -> list[str]:
    """Rows for routing on real citizens' questions (portal FAQ dev, leave-one-source-out, locality)."""
    c, sup = r["cold_start"], r["supervised"]
    weight = r.get("new_wording_weight", NEW_WORDING_WEIGHT)
    rows = []
    for m in ("top1", "top3", "ece"):
        rows.append(
            f"| portal FAQ dev ({r['n_dev']}), cold start, no labels | {m} | {c['router'][m]} | "
            f"{c['catalogue_anchor'][m]} (catalogue nearest procedures); previous router {c['previous_router'][m]} |"
        )
    rec = c.get("router_catalogue_labels")
    if rec:
        rows.append(
            f"| same, the {rec['n_relabelled']} questions whose procedure the catalogue now files under another "
            f"ministry counted for it | top1 / top3 | {rec['top1']} / {rec['top3']} | as published: "
            f"{c['router']['top1']} / {c['router']['top3']} |"
        )
    for key, what in (("labelled_sources", "labelled sources"), ("with_catalogue_weak_labels", "+ catalogue weak")):
        if key not in sup:
            continue
        for m in ("top1", "top3", "ece"):
            rows.append(
                f"| portal FAQ dev, supervised ({what}) + cold start | {m} | {sup[key]['router_blended'][m]} | "
                f"supervised alone {sup[key]['supervised_alone'][m]} |"
            )
    for held, v in r["leave_one_source_out"].items():
        rows.append(
            f"| leave {held} out (test: {v['test']}, {v['n_test']}) | top1 / top3 | "
            f"{v['blended']['top1']} / {v['blended']['top3']} | cold start {v['cold_start']['top1']} / "
            f"{v['cold_start']['top3']}; supervised alone {v['supervised_alone']['top1']} / "
            f"{v['supervised_alone']['top3']}"
            + (
                f"; blend at cold-start weight {weight} {v['blended_new_wording']['top1']} / "
                f"{v['blended_new_wording']['top3']}"
                if "blended_new_wording" in v
                else ""
            )
            + " |"
        )
    lat = r["latency_ms"]
    rows.append(
        f"| routing one submission with the catalogue | p50 / p95 ms | {lat['blended_median']} / "
        f"{lat['blended_p95']} | previous router {lat['previous_median']} / {lat['previous_p95']} (same run) |"
    )
    loc = r["locality"]
    rows.append(
        f"| local matter or policy question ({loc['n']}: {loc['sample']}) | precision / recall | "
        f"{loc['precision']} / {loc['recall']} | every named province is local: precision {loc['naive_precision']} |"
    )
    return rows
