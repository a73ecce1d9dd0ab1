"""Operations (issue 24, item 4): request ids, JSON log lines without texts, and Prometheus /metrics."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.load.server import Server
from service.app import create_app
from service.observability import JsonFormatter
from tests.service.conftest import BODY, Service, unique
from triage.config import Settings


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_ids_are_answered_and_only_plain_ones_are_kept(service: Service) -> None:
    r = service.client.get("/health/live", headers={"X-Request-ID": "proxy-abc.123"})
    assert r.headers["X-Request-ID"] == "proxy-abc.123"
    for bad in ("a b", "x" * 65, "<script>"):
        r = service.client.get("/health/live", headers={"X-Request-ID": bad})
        assert r.headers["X-Request-ID"] != bad and len(r.headers["X-Request-ID"]) == 32
    one, two = (service.client.get("/health/live").headers["X-Request-ID"] for _ in range(2))
    assert one != two


def test_metrics_count_requests_intake_routing_and_queues(service: Service) -> None:
    before = samples(service.client.get("/metrics").text)
    marker = unique("đo-lường")
    r = service.client.post("/api/v1/submissions", json={**BODY, "title": f"Thuế {marker}"})
    assert r.status_code == 201, r.text
    service.client.get(f"/khong-co-trang-nay-{marker}")
    scrape_text = service.client.get("/metrics").text
    after = samples(scrape_text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("triage_http_requests_total", method="POST", route="/api/v1/submissions", status="201") == 1
    assert grew("triage_intake_duration_seconds_count") == 1
    assert grew("triage_routing_duration_seconds_count") == 1
    assert grew("triage_routing_confidence_count") == 1
    assert (
        grew("triage_suggestions_total", auto_routed="false") + grew("triage_suggestions_total", auto_routed="true")
        == 1
    )
    assert grew("triage_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert marker not in scrape_text  # a 404's path is never a label
    assert value(after, "triage_cases", state="new") >= 1
    assert ("triage_cases_overdue", ()) in after
    assert value(after, "triage_jobs", state="running") == 0
    model = next(k for k in after if k[0] == "triage_model_info")
    assert dict(model[1])["version"] == service.svc.pipeline.model_version


def test_access_lines_carry_the_request_and_the_user_never_the_text(service: Service) -> None:
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("triage.access")
    access.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.INFO)
    marker = unique("bí-mật")
    try:
        service.client.post("/api/v1/submissions", json={**BODY, "content": f"Nội dung riêng {marker}"})
        token, who = service.user("clerk")
        r = service.client.get(
            "/api/v1/cases", params={"q": marker}, headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-1"}
        )
        assert r.status_code == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    records = [json.loads(line) for line in lines]
    listed = next(rec for rec in records if rec.get("request_id") == "req-1")
    assert listed["route"] == "/api/v1/cases" and listed["status"] == 200 and listed["method"] == "GET"
    assert listed["user_id"] == who.user_id and listed["duration_ms"] >= 0
    submitted = next(rec for rec in records if rec.get("route") == "/api/v1/submissions")
    assert "user_id" not in submitted  # the public form has no account
    assert all(marker not in line for line in lines)  # neither the text nor the search term


@pytest.fixture(scope="module")
def guarded(encoder_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        encoder_path=encoder_path,
        data_dir=tmp_path_factory.mktemp("metrics-token"),
        metrics_token="s3cret-scrape-token",
        model_poll_s=0,
        escalate_interval_s=0,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_metrics_token_is_required_when_set(guarded: TestClient) -> None:
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = guarded.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert r.status_code == 200 and "triage_http_requests_total" in r.text


@pytest.mark.slow
def test_production_serve_writes_json_lines_with_request_ids(
    tmp_path_factory: pytest.TempPathFactory, encoder_path: Path
) -> None:
    """A real `triage serve` in production mode: every line it writes is a JSON object; requests carry ids."""
    data = tmp_path_factory.mktemp("json-logs")
    srv = Server(
        data,
        extra_env={
            "TRIAGE_ENCODER_PATH": str(encoder_path),
            "TRIAGE_ENV": "production",
            "TRIAGE_JWT_SECRET": secrets.token_urlsafe(40),
            "TRIAGE_AUDIT_KEY": secrets.token_urlsafe(40),
        },
    )
    marker = unique("riêng-tư")
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=60.0) as c:
            r = c.post("/api/v1/submissions", json={**BODY, "content": f"Nội dung {marker}"})
            assert r.status_code == 201, r.text
            rid = r.headers["X-Request-ID"]
            assert c.get("/metrics").status_code == 200
    finally:
        srv.stop()
    text = (data / "server.log").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all({"ts", "level", "logger", "msg"} <= rec.keys() for rec in records)
    access = [rec for rec in records if rec["logger"] == "triage.access"]
    assert any(rec["request_id"] == rid and rec["route"] == "/api/v1/submissions" for rec in access)
    assert marker not in text
