"""POST /api/v1/similar and the similar cases of a filed submission: P(same matter) beside the cosine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from tests.service.conftest import Service, unique
from triage.config import Settings
from triage.store.tables import Submission

NEW = "Thủ tục cấp mới Giấy phép lái xe được thực hiện như thế nào?"
DAMAGED = "Thủ tục cấp đổi Giấy phép lái xe bị hỏng được thực hiện như thế nào?"
RESENT = "Cho tôi hỏi: Thủ tục cấp đổi Giấy phép lái xe bị hỏng được thực hiện như thế nào? Xin cảm ơn."


def similar(client: TestClient, a: str, b: str) -> dict[str, Any]:
    r = client.post("/api/v1/similar", json={"text1": a, "text2": b})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_similar_gives_the_same_matter_probability(service: Service) -> None:
    different = similar(service.client, NEW, DAMAGED)
    resent = similar(service.client, DAMAGED, RESENT)
    assert different["scorer"] == resent["scorer"] == "same_matter"
    assert different["score"] > 0.9  # the cosine alone would call them duplicates
    assert different["probability"] < different["threshold"] and not different["likely_duplicate"]
    assert resent["probability"] >= resent["threshold"] and resent["likely_duplicate"]


def test_a_resubmitted_question_is_flagged_and_another_matter_is_not(service: Service) -> None:
    admin = service.headers("admin")
    tag = unique("Hà Giang ")
    first = service.client.post(
        "/api/v1/submissions",
        json={
            "kind": "phan_anh",
            "submitter_type": "citizen",
            "title": "Giấy phép lái xe",
            "content": f"{DAMAGED} ({tag})",
        },
    )
    assert first.status_code == 201, first.text
    ids = []
    for content in (f"{RESENT} ({tag})", f"{NEW} ({tag})"):
        r = service.client.post(
            "/api/v1/submissions",
            json={"kind": "phan_anh", "submitter_type": "citizen", "title": "Giấy phép lái xe", "content": content},
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["tracking_code"])
    flags = []
    for code in ids:
        with service.svc.db.read() as s:
            case_id = s.scalar(select(Submission.case_id).where(Submission.tracking_code == code))
        detail = service.client.get(f"/api/v1/cases/{case_id}", headers=admin).json()
        suggestion = detail["suggestion"]
        assert suggestion["duplicate_scorer"] == "same_matter"
        assert all(c["probability"] is not None for c in suggestion["similar"])
        flags.append(suggestion["likely_duplicate"])
    assert flags == [True, False]


@pytest.fixture(scope="module")
def cosine_client(encoder_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(encoder_path=encoder_path, data_dir=tmp_path_factory.mktemp("var"), duplicate_scorer="cosine")
    with TestClient(create_app(settings)) as c:
        yield c


def test_cosine_mode_keeps_the_raw_cosine(cosine_client: TestClient) -> None:
    body = similar(cosine_client, NEW, DAMAGED)
    assert body["scorer"] == "cosine" and body["probability"] is None
    assert body["threshold"] == 0.9298 and body["likely_duplicate"] == (body["score"] >= 0.9298)
