"""The champion registry end to end with the model-folder protocol, including versions registered before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import uit_topics
from training.registry import ModelRegistry
from triage.config import Settings
from triage.errors import ModelIncompatible
from triage.nlp.artifacts import load
from triage.nlp.manifest import MANIFEST, seal
from triage.nlp.model_bundle import Bundle, save_bundle
from triage.nlp.router import Router


def test_a_champion_saved_as_bundle_json_downloads_and_loads_once_listed(shared_data: Path, tmp_path: Path) -> None:
    import mlflow

    uit = uit_topics(shared_data, 200, 20)
    router = Router(embedder=None, embedding_weight=0.0, C=0.5).fit(uit["tx"], uit["ty"])
    folder = save_bundle(tmp_path / "bundle", router, None, {"label": "old", "auto_route": {"threshold": 0.8}})
    # What retraining wrote before the protocol: the card as bundle.json, without kind or format.
    old = ("kind", "format", "files")
    card = {k: v for k, v in json.loads((folder / MANIFEST).read_text()).items() if k not in old}
    (folder / MANIFEST).unlink()
    (folder / "bundle.json").write_text(json.dumps(card))

    settings = Settings(data_dir=tmp_path / "data", registry_model="legacy-test")
    reg = ModelRegistry(settings)
    mlflow.set_tracking_uri(reg.uri)
    with mlflow.start_run(experiment_id=reg.experiment_id()) as run:
        mlflow.log_artifacts(str(folder), artifact_path="bundle")
        source = mlflow.get_artifact_uri("bundle")
    version = reg.register(source=source, run_id=run.info.run_id, tags={"created_by": "test"})
    reg.promote(version, reason="test")

    champ = ModelRegistry(settings).champion()
    assert champ is not None and champ.version == version
    got = reg.download(champ)
    assert (got / "bundle.json").exists() and reg.download(champ) == got  # cached on the second call
    with pytest.raises(ModelIncompatible, match="unsigned"):  # no SHA-256 list of its files: refused
        load(got, kinds=("bundle",), embedder=None)
    assert seal(got)  # an operator who trusts this download lists its files
    bundle = load(got, kinds=("bundle",), embedder=None, label=f"legacy-test/v{version}")
    assert isinstance(bundle, Bundle) and bundle.label == f"legacy-test/v{version}" and bundle.auto_threshold == 0.8
    assert bundle.agency_router.supervised_ is not None
    assert list(bundle.agency_router.supervised_.classes_) == list(router.classes_)
