"""`triage eval-slice`, `triage retrain`, `triage models list|promote|rollback`, `triage drift` end to end."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import read_rows
from tests.training.conftest import add_labels
from triage.cli import app
from triage.config import get_settings
from triage.nlp.agencies import default_registry
from triage.store.db import Database, init_db


@pytest.fixture
def env(tmp_path: Path, encoder_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'triage.db'}")
    init_db(db)
    for key, value in {
        "TRIAGE_DATABASE_URL": db.url,
        "TRIAGE_DATA_DIR": str(tmp_path),
        "TRIAGE_ENCODER_PATH": str(encoder_path),
        "TRIAGE_REGISTRY_MODEL": "cli-router",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()
    db.dispose()


@pytest.mark.slow
def test_learning_loop_commands(env: Database, shared_data: Path) -> None:
    reg = default_registry()
    rows = [
        (r["text"], reg.resolve(r["agency"]).code) for r in read_rows(shared_data / "zalo_legal/agency_train.jsonl")
    ]
    top = {c for c, _ in Counter(c for _, c in rows).most_common(3)}
    per: Counter[str] = Counter()
    picked = []
    for text, code in rows:
        if code in top and per[code] < 20:
            per[code] += 1
            picked.append((text, code))
    add_labels(env, picked)
    runner = CliRunner()

    refused = runner.invoke(app, ["retrain"])
    assert refused.exit_code == 2 and "evaluation slice is empty" in refused.output

    grown = runner.invoke(app, ["eval-slice", "grow", "--fraction", "0.25"])
    assert grown.exit_code == 0, grown.output
    size = json.loads(grown.stdout)["slice_size"]
    assert 10 <= size <= 20
    shown = json.loads(runner.invoke(app, ["eval-slice", "show"]).stdout)
    assert shown["slice_size"] == size and shown["train_size"] == 60 - size

    first = runner.invoke(app, ["retrain"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["version"] == 1 and out["promoted"] and out["dataset"]["n_eval"] == size
    assert 0 < out["metrics"]["macro_f1"] <= 1 and out["auto_route"]["target_precision"] == 0.97
    assert json.loads(runner.invoke(app, ["retrain"]).stdout)["version"] == 2

    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and listed.stdout.splitlines()[0].startswith("* v2")
    back = runner.invoke(app, ["models", "rollback"])
    assert back.exit_code == 0 and "champion is now version 1" in back.output
    assert runner.invoke(app, ["models", "list"]).stdout.splitlines()[1].startswith("* v1")
    assert runner.invoke(app, ["models", "promote", "2"]).exit_code == 0
    missing = runner.invoke(app, ["models", "promote", "9"])
    assert missing.exit_code == 2 and "no version 9" in missing.output

    drift = runner.invoke(app, ["drift", "--recent-weeks", "1", "--reference-weeks", "52"])
    assert drift.exit_code == 0, drift.output
    assert {"labels", "confidence", "weeks"} <= set(json.loads(drift.stdout))
