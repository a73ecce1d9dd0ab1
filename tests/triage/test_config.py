"""Settings: documented field by field, docs/settings.md generated from them, paths outside the package."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

import triage
from triage.config import Settings, settings_markdown

REPO = Path(__file__).resolve().parents[2]
PATH_FIELDS = ["model_dir", "data_dir", "shared_data_dir"]


def test_every_setting_has_a_description() -> None:
    missing = [name for name, f in Settings.model_fields.items() if len((f.description or "").split()) < 3]
    assert missing == []


def test_settings_doc_is_generated_and_current() -> None:
    doc = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    assert doc == settings_markdown(), "docs/settings.md is stale: run `python scripts/settings_doc.py`"
    for name in Settings.model_fields:
        assert f"`TRIAGE_{name.upper()}`" in doc


def test_the_doc_refuses_an_undocumented_setting() -> None:
    class Extra(Settings):
        undocumented: int = Field(default=1)

    with pytest.raises(ValueError, match="undocumented"):
        settings_markdown(Extra)


def test_doc_shows_the_code_defaults() -> None:
    doc = settings_markdown()
    assert "| `TRIAGE_INDEX_HNSW_M` | `int` (>= 4, <= 128) | `48` |" in doc
    assert "| `TRIAGE_INDEX_EF_SEARCH` | `int` (>= 8) | `96` |" in doc
    assert "| `TRIAGE_ENV` | `'dev' \\| 'production'` | `dev` |" in doc


def test_dead_setting_is_gone() -> None:
    assert "abstain_threshold" not in Settings.model_fields


def test_default_paths_follow_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PATH_FIELDS:
        monkeypatch.delenv(f"TRIAGE_{name.upper()}", raising=False)
    monkeypatch.chdir(tmp_path)
    s = Settings(_env_file=None)
    package = Path(triage.__file__).resolve().parent
    for name in PATH_FIELDS:
        path = getattr(s, name)
        assert not path.is_absolute(), name
        assert not path.resolve().is_relative_to(package), name
    assert s.model_dir.resolve() == tmp_path / "models"
    assert s.data_dir.resolve() == tmp_path / "var"
    assert s.shared_data_dir.resolve() == tmp_path.parent / "shared" / "data"
