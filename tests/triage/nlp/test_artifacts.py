"""One model-folder protocol: every kind round-trips through ``load``, old and foreign folders are refused
with the command that rebuilds them, and format 0 folders whose content is current still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import uit_topics
from triage.errors import InvalidInput, ModelIncompatible, ModelMissing
from triage.nlp.artifacts import kind_of, load
from triage.nlp.duplicates import DuplicateIndex
from triage.nlp.embed import OnnxEmbedder
from triage.nlp.manifest import FORMAT, MANIFEST, is_current, is_model_folder, read_manifest, seal
from triage.nlp.model_bundle import Bundle, save_bundle
from triage.nlp.moderation import Moderator
from triage.nlp.router import Router


@pytest.fixture(scope="module")
def uit(shared_data: Path) -> dict[str, Any]:
    return uit_topics(shared_data, 300, 40)


@pytest.fixture(scope="module")
def router(uit: dict[str, Any]) -> Router:
    return Router(embedder=None, embedding_weight=0.0, C=0.5).fit(uit["tx"], uit["ty"])


def _manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    return data


def _rewrite(folder: Path, **changes: Any) -> None:
    """Edit a saved manifest: a value of None drops the key (how an older version wrote it)."""
    data = _manifest(folder)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    (folder / MANIFEST).write_text(json.dumps(data))


def test_router_round_trips_with_kind_and_format(router: Router, uit: dict[str, Any], tmp_path: Path) -> None:
    router.save(tmp_path / "r")
    manifest = _manifest(tmp_path / "r")
    assert manifest["kind"] == "router" and manifest["format"] == FORMAT and manifest["created_at"]
    assert manifest["versions"]["scikit-learn"] and manifest["classes"] == [str(c) for c in router.classes_]
    assert is_current(tmp_path / "r", "router") and kind_of(tmp_path / "r") == "router"
    back = load(tmp_path / "r", embedder=None, threads=1)  # threads is for other kinds: not handed to Router
    assert type(back) is Router
    assert np.allclose(back.predict_proba(uit["dx"]), router.predict_proba(uit["dx"]))


def test_bundle_round_trips_and_reads_a_format_0_card(router: Router, uit: dict[str, Any], tmp_path: Path) -> None:
    card = {"label": "test/v1", "auto_route": {"threshold": 0.7}, "created_by": "test"}
    save_bundle(tmp_path / "b", router, router, card, metrics={"top1": 0.5})
    manifest = _manifest(tmp_path / "b")
    assert manifest["kind"] == "bundle" and manifest["format"] == FORMAT and manifest["label"] == "test/v1"
    assert _manifest(tmp_path / "b" / "agency")["metrics"] == {"top1": 0.5}
    bundle = load(tmp_path / "b", embedder=None, label="reg/v3")
    assert isinstance(bundle, Bundle) and bundle.label == "reg/v3" and bundle.auto_threshold == 0.7
    assert isinstance(bundle.field_router, Router) and bundle.card["created_by"] == "test"
    assert np.allclose(bundle.field_router.predict_proba(uit["dx"]), router.predict_proba(uit["dx"]))
    assert bundle.agency_router.supervised_ is not None

    # Registered before the protocol: `bundle.json` without kind or format, no manifest.json.
    data = _manifest(tmp_path / "b")
    for key in ("kind", "format", "created_at", "versions", "files"):
        data.pop(key)
    (tmp_path / "b" / MANIFEST).unlink()
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(data))
    assert is_model_folder(tmp_path / "b") and not is_current(tmp_path / "b")
    # No SHA-256 list of its files: refused as unsigned until someone who trusts the folder lists them.
    with pytest.raises(ModelIncompatible, match="unsigned"):
        load(tmp_path / "b", kinds=("bundle",), embedder=None)
    assert seal(tmp_path / "b")
    old = load(tmp_path / "b", kinds=("bundle",), embedder=None)
    assert isinstance(old, Bundle) and old.label == "test/v1" and old.auto_threshold == 0.7


def test_moderator_round_trips(small_moderator: Moderator, tmp_path: Path) -> None:
    small_moderator.save(tmp_path / "mod")
    assert _manifest(tmp_path / "mod")["format"] == FORMAT
    back = load(tmp_path / "mod", embedder=None, abuse_threshold=0.9)
    assert isinstance(back, Moderator) and back.abuse_threshold == 0.9 and back.version == small_moderator.version


def test_duplicate_index_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(20, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)  # the index stores unit vectors (cosine)
    idx = DuplicateIndex(8)
    idx.add(list(range(100, 120)), vecs)
    idx.save(tmp_path / "dup", extra={"last_seq": 7})
    manifest = _manifest(tmp_path / "dup")
    assert manifest["kind"] == "duplicate_index" and manifest["format"] == FORMAT and manifest["last_seq"] == 7
    back = load(tmp_path / "dup")
    assert isinstance(back, DuplicateIndex) and len(back) == 20
    assert back.search(vecs[:1], 1)[0][0].id == 100


def test_encoder_loads_and_a_format_0_encoder_folder_too(encoder_path: Path, tmp_path: Path) -> None:
    enc = load(encoder_path, threads=1)
    assert isinstance(enc, OnnxEmbedder) and enc.model_id.startswith(read_manifest(encoder_path)["id"])
    # The manifest an encoder was built with before the protocol: no kind, no format (files linked, not copied).
    old = tmp_path / "enc"
    old.mkdir()
    for item in encoder_path.iterdir():
        if item.name != MANIFEST:
            (old / item.name).symlink_to(item)
    before = {k: v for k, v in _manifest(encoder_path).items() if k not in ("kind", "format")}
    (old / MANIFEST).write_text(json.dumps(before))
    assert kind_of(old) == "encoder" and not is_current(old)
    assert isinstance(load(old, threads=1), OnnxEmbedder)


def test_old_router_is_refused_with_the_command_that_retrains_it(router: Router, tmp_path: Path) -> None:
    router.save(tmp_path / "r")
    _rewrite(tmp_path / "r", format=None)  # format 0, but pickled by this version: read as format 1
    assert isinstance(load(tmp_path / "r"), Router) and not is_current(tmp_path / "r")
    _rewrite(tmp_path / "r", search_out_of_fold_log_loss=None)  # from before the embedding weight search
    with pytest.raises(ModelIncompatible, match=r"older version.*triage train"):
        load(tmp_path / "r")
    with pytest.raises(ModelIncompatible, match="triage train"):
        Router.load(tmp_path / "r")
    # A bundle or a moderator made of such a router is refused as a whole, with its own command.
    save_bundle(tmp_path / "b", router, None, {"label": "x"})
    (tmp_path / "b" / MANIFEST).rename(tmp_path / "b" / "bundle.json")
    _rewrite_bundle_card(tmp_path / "b")
    _rewrite(tmp_path / "b" / "agency", format=None, search_out_of_fold_log_loss=None)
    with pytest.raises(ModelIncompatible, match=r"agency/.*triage retrain"):
        load(tmp_path / "b", embedder=None)


def _rewrite_bundle_card(folder: Path) -> None:
    card = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({k: v for k, v in card.items() if k not in ("kind", "format")}))


def test_unknown_kind_newer_format_other_kind_and_nothing_are_refused(router: Router, tmp_path: Path) -> None:
    router.save(tmp_path / "r")
    with pytest.raises(ModelIncompatible, match="holds a router, not a moderator"):
        load(tmp_path / "r", kinds=("moderator",))
    with pytest.raises(ModelIncompatible, match=r"not a moderator.*moderation train"):
        Moderator.load(tmp_path / "r")
    with pytest.raises(InvalidInput, match="no model kind takes"):
        load(tmp_path / "r", embeder=None)
    _rewrite(tmp_path / "r", format=FORMAT + 1)
    with pytest.raises(ModelIncompatible, match="newer than this version reads"):
        load(tmp_path / "r")
    _rewrite(tmp_path / "r", kind="mystery", format=FORMAT)
    with pytest.raises(ModelIncompatible, match="unknown kind 'mystery'"):
        load(tmp_path / "r")
    with pytest.raises(ModelMissing, match="no model at"):
        load(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / MANIFEST).write_text("{not json")
    with pytest.raises(ModelIncompatible, match="unreadable"):
        load(tmp_path / "bad")
    assert not is_current(tmp_path / "bad") and not is_current(tmp_path / "nothing")
