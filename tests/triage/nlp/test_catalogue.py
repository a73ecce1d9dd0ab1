"""The shipped catalogue: what it holds, that the script rebuilds it, and retrieval over it."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from triage.config import get_settings
from triage.errors import InvalidInput, ModelIncompatible
from triage.nlp.agencies import default_registry
from triage.nlp.catalogue import Catalogue, default_catalogue, unit_of
from triage.nlp.procedure_router import ProcedureRouter, catalogue_encodings

ROOT = Path(__file__).resolve().parents[3]


def test_the_package_ships_the_catalogue_facts() -> None:
    catalogue = default_catalogue()
    registry = default_registry()
    assert len(catalogue) > 5000
    assert all(p.agency in registry for p in catalogue.procedures)
    assert {p.level for p in catalogue.procedures} == {"central", "province"}
    fields = {f for p in catalogue.procedures for f in p.fields}
    assert len(fields) == 283 and "Đất đai" in fields
    residence = [p for p in catalogue.procedures if p.name.startswith("Đăng ký thường trú")]
    assert residence and all(registry.root(p.agency).code == "BCA" for p in residence)
    assert residence[0].reason == "Thủ tục: Đăng ký thường trú - lĩnh vực Đăng ký, quản lý cư trú"


def test_the_script_rebuilds_the_shipped_file_from_the_shared_data() -> None:
    source = get_settings().shared_data_dir / "dvc_catalog" / "procedures.jsonl"
    spec = importlib.util.spec_from_file_location("build_catalogue", ROOT / "scripts" / "build_catalogue.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build(source)
    shipped = json.loads(gzip.decompress((ROOT / "triage" / "data" / "catalogue.json.gz").read_bytes()))
    assert built == shipped  # the checked-in facts are exactly what the script derives
    crawled = {json.loads(line)["code"] for line in source.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert {row[0] for row in shipped["procedures"]} <= crawled


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"format": 99, "fields": [], "procedures": []}).encode()))
    with pytest.raises(ModelIncompatible, match="build_catalogue"):
        Catalogue.load(path)


@pytest.mark.parametrize(
    ("executing", "unit"),
    [
        ("Cục Thuế - Bộ tài chính", "BTC-THUE"),
        ("Thuế tỉnh, thành phố", "BTC-THUE"),
        ("Bảo hiểm xã hội tỉnh", "BHXH"),
        ("Chi cục Hải quan khu vực", "BTC-HQ"),
        ("Cục Sở hữu trí tuệ", "BKHCN-SHTT"),
        ("Ủy ban nhân dân cấp tỉnh", None),
        ("Bộ Tài chính", None),
    ],
)
def test_executing_agencies_map_to_registered_units(executing: str, unit: str | None) -> None:
    assert unit_of(executing, default_registry()) == unit


def test_lexical_retrieval_works_without_an_encoder() -> None:
    router = ProcedureRouter().fit()
    proba, evidence = router.predict_with_evidence(["Thủ tục cấp hộ chiếu phổ thông ở trong nước"])
    best = str(router.classes_[proba[0].argmax()])
    assert best == "BCA" and np.isclose(proba.sum(), 1.0)
    assert "hộ chiếu" in evidence[0][best].procedure.name.lower()


def test_encodings_are_cached_per_encoder_and_catalogue(embedder: Any, tmp_path: Path) -> None:
    small = Catalogue(list(default_catalogue().procedures[:40]))
    first = catalogue_encodings(small, embedder, tmp_path)
    files = list(tmp_path.glob("*.npy"))
    assert len(files) == 1 and small.fingerprint() in files[0].name
    again = catalogue_encodings(small, embedder, tmp_path)
    assert np.array_equal(first, again) and first.shape == (40, embedder.dimension)


def test_a_shared_index_needs_the_texts_embeddings(embedder: Any) -> None:
    router = ProcedureRouter(embedder=embedder, cache_dir=get_settings().model_dir / "catalogue").fit()
    router.embedder = None
    with pytest.raises(InvalidInput, match="embeddings"):
        router.predict_proba(["Đăng ký thường trú"])
    emb = embedder.encode(["Đăng ký thường trú cho con"])
    assert str(router.classes_[router.predict_proba(["Đăng ký thường trú cho con"], emb)[0].argmax()]) == "BCA"


def test_complaint_procedures_also_vote_for_the_inspectorate() -> None:
    """Thanh tra Chính phủ issues no procedure, but it manages complaints and denunciations state-wide:
    a ministry's complaint procedures give it a share of their vote, other procedures none."""
    registry = default_registry()
    assert registry.overseer(["Khiếu nại BQP"]) == "TTCP"
    assert registry.overseer(["Khiếu nại, tố cáo"]) == "TTCP"
    assert registry.overseer(["Đất đai", "Hộ tịch"]) is None
    text = ["Tôi muốn khiếu nại quyết định giải quyết tố cáo của thủ trưởng cơ quan"]
    shared = ProcedureRouter().fit()
    alone = ProcedureRouter(oversight_share=0.0).fit()
    assert "TTCP" in shared.classes_
    p_shared = shared.predict_proba(text)[0, list(shared.classes_).index("TTCP")]
    p_alone = alone.predict_proba(text)[0, list(alone.classes_).index("TTCP")]
    assert p_shared > 0.1 > p_alone
    land = shared.predict_proba(["Thủ tục cấp giấy chứng nhận quyền sử dụng đất lần đầu"])[0]
    assert land[list(shared.classes_).index("TTCP")] < 0.01


def test_award_procedures_also_vote_for_the_home_affairs_ministry() -> None:
    """Every ministry issues its own emulation and award procedures, but Bộ Nội vụ (the central emulation
    and awards board) manages the field state-wide: a question about a state award must reach it."""
    registry = default_registry()
    assert registry.overseer(["Thi đua – Khen thưởng"]) == "BNV"
    assert registry.overseer(["Khen thưởng BQP"]) == "BNV"
    assert registry.overseer(["Khiếu nại BQP"]) == "TTCP"
    text = ["Hồ sơ đề nghị tặng Cờ thi đua cấp Bộ, ban, ngành, đoàn thể Trung ương gồm những gì?"]
    shared = ProcedureRouter().fit()
    alone = ProcedureRouter(oversight_share=0.0).fit()
    with_board, without = shared.predict_proba(text)[0], alone.predict_proba(text)[0]
    assert with_board[list(shared.classes_).index("BNV")] > 5 * without[list(alone.classes_).index("BNV")]
    assert "BNV" in [str(c) for c in shared.classes_[np.argsort(-with_board)[:2]]]
