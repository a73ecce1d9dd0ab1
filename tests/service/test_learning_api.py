"""The clerks' uncertainty queue and the drift report over HTTP (roles, validation, shape)."""

from __future__ import annotations

from tests.service.conftest import Service
from triage.store.tables import Case


def test_uncertain_queue_for_clerks(service: Service) -> None:
    with service.svc.db.session() as s:
        now = service.svc.now()
        sug = {
            "agencies": [
                {"code": "BTC", "name": "Bộ Tài chính", "score": 0.41},
                {"code": "BYT", "name": "Bộ Y tế", "score": 0.4},
            ]
        }
        c = Case(state="new", kind="phan_anh", received_at=now, suggestion=sug, model_version="m-test", updated_at=now)
        s.add(c)
        s.flush()
        torn = c.id
    r = service.client.get("/api/v1/cases/uncertain", headers=service.headers("clerk"), params={"limit": 200})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    mine = next(i for i in items if i["case_id"] == torn)
    assert mine["margin"] == 0.01 and mine["top_agency"] == "BTC" and mine["model_version"] == "m-test"
    assert [i["margin"] for i in items] == sorted(i["margin"] for i in items)
    assert service.client.get("/api/v1/cases/uncertain", headers=service.headers("analyst")).status_code == 403
    bad = service.client.get("/api/v1/cases/uncertain", headers=service.headers("clerk"), params={"by": "mood"})
    assert bad.status_code == 422 and "by" in bad.json()["detail"]


def test_drift_report_for_analysts(service: Service) -> None:
    r = service.client.get("/api/v1/reports/drift", headers=service.headers("analyst"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"labels", "confidence", "weeks", "recent", "reference"} <= set(body)
    assert body["recent"]["weeks"] == service.svc.settings.drift_recent_weeks
    assert service.client.get("/api/v1/reports/drift", headers=service.headers("clerk")).status_code == 403


def test_models_endpoints_without_any_registered_version(service: Service) -> None:
    r = service.client.get("/api/v1/models", headers=service.headers("analyst"))
    assert r.status_code == 200, r.text
    assert r.json()["versions"] == [] and "agency:cold-start" in r.json()["served"]
    assert service.client.get("/api/v1/models", headers=service.headers("clerk")).status_code == 403
    assert service.client.get("/api/v1/models/jobs/../x", headers=service.headers("admin")).status_code == 404
