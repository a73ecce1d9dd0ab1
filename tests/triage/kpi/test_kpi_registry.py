"""The packaged Resolution-57 registry loads and is consistent; a broken file fails with every reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from triage.config import Settings
from triage.errors import InvalidInput
from triage.kpi.registry import DEFAULT_PATH, default_kpi_registry, load_registry


def test_packaged_registry_has_groups_targets_sources_and_agencies() -> None:
    reg = load_registry()
    assert {g.code for g in reg.groups} >= {"institutions", "infrastructure", "digital_government"}
    rd = reg.strategic_by_code("S_RD_GDP")
    assert (rd.target, rd.deadline.year, rd.illustrative) == (2.0, 2030, False)
    assert "57-NQ/TW" in reg.sources[rd.source]
    for s in reg.strategic:  # a published target names its source; anything else says it is illustrative
        assert s.illustrative or s.source != "illustrative"
        assert reg.children(s.code), s.code
    assert {o.aggregation for o in reg.operational} == {"sum", "weighted_mean", "latest", "all_done"}
    assert {o.period for o in reg.operational} >= {"quarter", "year"}
    assert reg.operational_by_code("O_ONLINE_RATE").weight_by == "O_DOSSIERS_TOTAL"
    assert [r.code for r in reg.rules_for("O_DOSSIERS_ONLINE")] == ["VR_ONLINE_LE_TOTAL"]


def _write(tmp_path: Path, change: dict) -> Path:  # type: ignore[type-arg]
    raw = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    for key, value in change.items():
        section, index, field = key.split(".")
        raw[section][int(index)][field] = value
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"operational.0.lead": "XYZ"}, "unknown agency 'XYZ'"),
        ({"strategic.0.measure": "O_ONLINE_RATE"}, "must be one of its own operational indicators"),
        ({"operational.9.weight_by": None}, "weighted_mean needs weight_by"),
        ({"validation_rules.0.operator": "=~"}, "operator"),
        ({"strategic.0.group": "space"}, "unknown group"),
    ],
)
def test_a_broken_registry_is_refused_with_its_reason(tmp_path: Path, change: dict, reason: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInput, match=reason):
        load_registry(_write(tmp_path, change))


def test_the_path_is_a_setting_and_json_works_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    raw = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    raw["programme"]["name"] = "Chương trình khác"
    path = tmp_path / "other.json"
    path.write_text(json.dumps(raw, default=str, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("TRIAGE_KPI_REGISTRY_PATH", str(path))
    assert Settings().kpi_registry_path == path
    assert default_kpi_registry(path).programme.name == "Chương trình khác"
    with pytest.raises(InvalidInput, match="not valid YAML/JSON"):
        bad = tmp_path / "bad.json"
        bad.write_text("{", encoding="utf-8")
        load_registry(bad)
