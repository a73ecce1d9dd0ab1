"""The layers hold: the core (``triage`` without its CLI) imports nothing of the service, the training
loop or the benchmarks, and the import-linter contract in pyproject.toml is kept, with no exceptions.

Each check imports in a fresh interpreter: this test process has long since imported everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.probe import loaded_by, tops

REPO = Path(__file__).resolve().parents[2]
UPPER = {"service", "training", "benchmarks"}
# What the core must never load, not even through another module: the web stack, MLflow, the CLI's Typer.
FRAMEWORKS = {"fastapi", "starlette", "uvicorn", "mlflow", "typer"}


def test_importing_triage_and_its_core_packages_loads_no_upper_layer() -> None:
    loaded = loaded_by("triage", "triage.nlp", "triage.store", "triage.cases", "triage.config", "triage.errors")
    assert {"triage.nlp", "triage.store", "triage.cases"} <= loaded
    assert not tops(loaded) & (UPPER | FRAMEWORKS), sorted(m for m in loaded if m.split(".")[0] in UPPER | FRAMEWORKS)


def test_every_core_module_imports_without_the_service_training_benchmarks_or_frameworks() -> None:
    loaded = loaded_by("triage.nlp", "triage.store", "triage.cases", walk=True)
    core = {m for m in loaded if m.startswith(("triage.nlp.", "triage.store.", "triage.cases."))}
    assert {"triage.nlp.text", "triage.store.db", "triage.cases.workflow"} <= core  # the walk did import them
    assert not tops(loaded) & (UPPER | FRAMEWORKS), sorted(m for m in loaded if m.split(".")[0] in UPPER | FRAMEWORKS)


def test_the_text_module_stays_light() -> None:
    loaded = tops(loaded_by("triage.nlp.text"))
    assert "triage" in loaded
    assert not loaded & (UPPER | FRAMEWORKS | {"torch", "sqlalchemy", "sklearn"}), sorted(loaded)


def test_the_probe_sees_upper_layers_when_they_are_imported() -> None:
    """The checks above can fail: importing the service's app does load the service and FastAPI."""
    assert {"service", "fastapi"} <= tops(loaded_by("service.app"))


def test_the_import_linter_contract_holds_with_no_exceptions() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contracts = config["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert layers, "pyproject.toml has no import-linter layers contract"
    named = {part.strip() for c in layers for layer in c["layers"] for part in layer.split("|")}
    assert {"triage.cli", "service", "training", "triage.cases", "triage.store", "triage.nlp"} <= named
    assert not [c["name"] for c in contracts if c.get("ignore_imports")], "the contracts must list no ignored imports"

    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), "lint-imports is missing: install the dev extras (pip install -e '.[dev]')"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(contracts)} kept, 0 broken" in done.stdout, done.stdout
