"""Retraining through the real path (database, dataset, MLflow tracking and registry) and the champion gate."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import read_rows
from tests.training.conftest import T0, add_labels
from training.dataset import grow_eval_slice, slice_keys, text_key
from training.registry import ModelRegistry
from training.retrain import champion_gate, retrain
from triage.config import Settings
from triage.errors import InvalidInput
from triage.nlp.agencies import default_registry
from triage.nlp.model_bundle import AGENCY
from triage.nlp.router import DEFAULT_C_GRID, DEFAULT_EMBEDDING_WEIGHTS
from triage.store.db import Database, init_db
from triage.store.tables import Event

GATE: dict[str, Any] = {"tolerance": 0.0, "min_support": 5, "max_drop": 0.1}


def _m(macro: float, **per: tuple[float, int]) -> dict[str, Any]:
    return {"macro_f1": macro, "per_agency": {c: {"f1": f, "support": n} for c, (f, n) in per.items()}}


def test_gate_rules() -> None:
    assert champion_gate(_m(0.5), None, **GATE).promoted
    assert champion_gate(_m(0.80, BTC=(0.9, 10)), _m(0.80, BTC=(0.9, 10)), **GATE).promoted  # equal is enough
    lower = champion_gate(_m(0.79, BTC=(0.9, 10)), _m(0.80, BTC=(0.9, 10)), **GATE)
    assert not lower.promoted and "macro F1 0.7900 is lower" in lower.reasons[0]
    assert champion_gate(_m(0.79), _m(0.80), **{**GATE, "tolerance": 0.02}).promoted
    dropped = champion_gate(_m(0.85, BTC=(0.7, 10), BYT=(1.0, 10)), _m(0.80, BTC=(0.9, 10), BYT=(0.7, 10)), **GATE)
    assert not dropped.promoted and dropped.reasons == ["BTC: F1 0.7000 vs champion 0.9000 (drop > 0.1)"]
    # An agency with too little support is not judged on its own.
    assert champion_gate(_m(0.85, BQP=(0.0, 2)), _m(0.80, BQP=(1.0, 2)), **GATE).promoted


@pytest.fixture
def zalo(shared_data: Path) -> list[tuple[str, str]]:
    """The five most frequent agencies of the Zalo questions, 24 each (labels as codes)."""
    reg = default_registry()
    rows = [
        (r["text"], reg.resolve(r["agency"]).code) for r in read_rows(shared_data / "zalo_legal/agency_train.jsonl")
    ]
    top = {c for c, _ in Counter(c for _, c in rows).most_common(5)}
    per: Counter[str] = Counter()
    out = []
    for text, code in rows:
        if code in top and per[code] < 24:
            per[code] += 1
            out.append((text, code))
    return out


@pytest.mark.slow
def test_gate_refuses_a_deliberately_worse_model(
    empty_db: Database, zalo: list[tuple[str, str]], embedder: Any, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, registry_model="test-router")
    with pytest.raises(InvalidInput, match="evaluation slice is empty"):
        retrain(settings, empty_db, embedder=embedder)
    add_labels(empty_db, zalo)
    with empty_db.session() as s:
        grow_eval_slice(s, fraction=0.25, actor="test")

    first = retrain(settings, empty_db, embedder=embedder, created_by="test")
    assert first.promoted and first.version == 1 and first.reasons == ["no champion yet"]
    # Trained as the benchmarks train (training/fit.py): C and the embedding weight are searched, not pinned.
    reg = ModelRegistry(settings)
    manifest = json.loads((reg.download(reg.version(1)) / AGENCY / "manifest.json").read_text())
    searched = manifest["search_out_of_fold_log_loss"]
    assert manifest["params"]["C"] == list(DEFAULT_C_GRID) and len(DEFAULT_C_GRID) > 1
    assert len(searched) == len(DEFAULT_C_GRID) * len(DEFAULT_EMBEDDING_WEIGHTS) > 1
    chosen = f"C={manifest['chosen_C']}, embedding_weight={manifest['chosen_embedding_weight']}"
    assert searched[chosen] == min(searched.values())
    assert first.params["router_chosen_C"] == str(manifest["chosen_C"])
    assert first.metrics["macro_f1"] > first.cold_start_metrics["macro_f1"]
    assert {"ece_supervised_raw", "ece_supervised_calibrated", "ece_served"} <= set(first.calibration)
    assert reg.champion() is not None and reg.champion().version == 1  # type: ignore[union-attr]
    with empty_db.read() as s:
        moves = s.scalars(select(Event).where(Event.action == "model_promote")).all()
    assert [(e.actor, e.after["champion"]) for e in moves] == [("test", 1)]
    assert moves[0].after["reason"].startswith("champion gate: no champion yet")

    # A careless batch: every training text re-labelled with the next agency in the list (later labels win).
    with empty_db.read() as s:
        frozen = slice_keys(s)
    codes = sorted({c for _, c in zalo})
    wrong = [(t, codes[(codes.index(c) + 1) % len(codes)]) for t, c in zalo if text_key(t) not in frozen]
    add_labels(empty_db, wrong, start=T0.replace(month=4))
    worse = retrain(settings, empty_db, embedder=embedder, created_by="test")
    assert worse.version == 2 and not worse.promoted
    assert worse.metrics["macro_f1"] < first.metrics["macro_f1"]
    assert worse.champion_metrics is not None and worse.champion_metrics["macro_f1"] == first.metrics["macro_f1"]
    assert any("lower than the champion" in r for r in worse.reasons)
    assert reg.champion().version == 1  # type: ignore[union-attr]
    assert reg.version(2).tags["gate"] == "refused"
    with empty_db.read() as s:  # a refused version moves nothing, so nothing new is recorded
        assert s.scalar(select(func.count()).select_from(Event).where(Event.action == "model_promote")) == 1

    # The run is in MLflow with its metrics and artifacts.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=reg.uri)
    run = client.get_run(worse.run_id)
    assert run.data.tags["gate"] == "refused" and run.data.metrics["macro_f1"] == worse.metrics["macro_f1"]
    names = {a.path for a in client.list_artifacts(worse.run_id)}
    assert {"bundle", "confusion_matrix.json", "gate.json"} <= names


@pytest.mark.slow
def test_field_router_is_trained_when_labels_carry_fields(
    zalo: list[tuple[str, str]], embedder: Any, tmp_path: Path
) -> None:
    from triage.cases.pipeline import Pipeline, SubmissionText
    from triage.nlp.model_bundle import load_bundle

    db = Database(f"sqlite:///{tmp_path / 'fields.db'}")
    init_db(db)
    codes = sorted({c for _, c in zalo})
    # Real field names of the national procedure catalogue: commas, diacritics, "đ" (MLflow refuses them raw).
    names = [
        "Cán bộ, công chức, viên chức",
        "Tín ngưỡng, tôn giáo",
        "Khám bệnh, chữa bệnh",
        "Quản lý Đê điều và Phòng, chống thiên tai",
        "Đất đai",
    ]
    fields = dict(zip(codes, names, strict=True))
    add_labels(db, zalo, fields=fields)
    with db.session() as s:
        grow_eval_slice(s, fraction=0.25, actor="test")
    settings = Settings(data_dir=tmp_path, registry_model="field-test")
    result = retrain(settings, db, embedder=embedder)
    assert result.field_metrics is not None and result.field_metrics["n"] > 0
    assert result.params["field_router"] == "True"
    reg = ModelRegistry(settings)
    # Logged to MLflow under safe keys, every one mapped back to its readable name.
    from mlflow import MlflowClient

    from training.retrain import metric_key

    client = MlflowClient(tracking_uri=reg.uri)
    logged = client.get_run(result.run_id).data.metrics
    assert {f"field_f1_{metric_key(n)}" for n in names} <= set(logged)
    mapping = json.loads(Path(client.download_artifacts(result.run_id, "metric_names.json", str(tmp_path))).read_text())
    assert {mapping[metric_key(n)] for n in names} == set(names)
    bundle = load_bundle(reg.download(reg.version(1)), embedder=embedder, label="field-test/v1")
    assert bundle.field_router is not None and set(bundle.field_router.classes_) == set(fields.values())
    assert bundle.card["auto_route"]["target_precision"] == 0.97
    pipe = Pipeline(embedder=embedder, agency_router=bundle.agency_router)
    pipe.swap_models(bundle.agency_router, bundle.field_router, label=bundle.label)
    sug = pipe.triage(SubmissionText("Hỏi", zalo[0][0], "phan_anh", T0))
    assert sug.field_source == "router" and sug.fields[0].name in fields.values()
    assert "field-test/v1+router-" in sug.model_version and "|field:router-" in sug.model_version
    db.dispose()


def test_metric_names_are_safe_for_mlflow_and_map_back_to_the_labels() -> None:
    """Real field names (commas, diacritics, slashes) once made the retrain fail at "logging to MLflow"."""
    from mlflow.utils.validation import _validate_metric_name

    from training.retrain import _flat_metrics, metric_key, metric_names

    labels = ["Cán bộ, công chức, viên chức", "Cán bộ công chức viên chức", "Đất đai", "Thuế / Phí", "BTC"]
    report = {"macro_f1": 0.5, "per_agency": {label: {"precision": 0.5, "recall": 0.5, "f1": 0.5} for label in labels}}
    flat = _flat_metrics("field_", report)
    for name in flat:
        _validate_metric_name(name)  # raises MlflowException for a name the tracking store refuses
    assert len(flat) == 1 + 3 * len(labels)  # no two labels collapse onto one key
    assert metric_key("BTC") == "BTC" and "field_f1_BTC" in flat  # codes stay readable
    assert metric_key("Đất đai").startswith("Dat_dai-")
    assert metric_names(report, None) == {metric_key(label): label for label in labels}
