"""The models page in a real browser: a real `triage serve` (SQLite and its own MLflow store in a tmp dir)
whose registry holds one trained version; an admin retrains from the page (the progress bar follows the
job and the page reloads with the new version), promotes the older version, then rolls back. Every step
is checked against the service's /health model version. Screenshots: test-output/screenshots/14..17.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.load.server import Server
from tests.service.conftest import zalo_labels
from tests.service.web.browser import Page, start_chrome
from tests.training.conftest import add_labels
from training.dataset import grow_eval_slice
from training.retrain import retrain
from triage.cases.accounts import create_user
from triage.config import Settings
from triage.store.db import Database, init_db

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PASSWORD = "mật-khẩu-trình-duyệt-456"
REGISTRY = "browser-router"
RETRAIN_WAIT_S = 600


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, encoder_path: Path, embedder: Any, shared_data: Path
) -> Iterator[tuple[Page, str, Database]]:
    data = tmp_path_factory.mktemp("models-browser")
    url = f"sqlite:///{data / 'triage.db'}"
    settings = Settings(data_dir=data, database_url=url, registry_model=REGISTRY)
    db = Database.from_settings(settings)
    init_db(db)
    add_labels(db, zalo_labels(shared_data))
    with db.session() as s:
        grow_eval_slice(s, fraction=0.25, actor="test")
    assert retrain(settings, db, embedder=embedder, created_by="test").version == 1  # the champion at start-up
    server = Server(
        data,
        extra_env={
            "TRIAGE_DATABASE_URL": url,
            "TRIAGE_ENCODER_PATH": str(encoder_path),
            "TRIAGE_JWT_SECRET": secrets.token_urlsafe(40),
            "TRIAGE_REGISTRY_MODEL": REGISTRY,
            "TRIAGE_MODEL_POLL_S": "0",
        },
    )
    server.start()
    driver = start_chrome()
    try:
        yield Page(driver, server.url), server.url, db
    finally:
        driver.quit()
        server.stop()
        db.dispose()


def served(url: str) -> str:
    return str(httpx.get(url + "/health", timeout=10).json()["model_version"])


def champion(p: Page) -> str:
    row = p.el("tr.is-champion")
    match = re.fullmatch(r"version-(\d+)", row.get_attribute("id") or "")
    assert match, row.get_attribute("id")
    return match.group(1)


def test_admin_retrains_promotes_and_rolls_back_from_the_page(live: tuple[Page, str, Database]) -> None:
    p, url, db = live
    with db.session() as s:
        create_user(s, username="quantri1", password=PASSWORD, role="admin")
    assert f"agency:{REGISTRY}/v1+router-" in served(url)
    p.login("quantri1", PASSWORD)
    p.go("/staff/models")
    assert p.h1() == "Mô hình phân loại"
    assert champion(p) == "1" and p.text("#served-version") == "v1"
    assert p.el("#no-rollback")
    assert re.fullmatch(r"[01],\d{3}", p.text("#version-1 td[data-label='Top-3']"))
    p.check_and_shoot("14-models-versions")

    # Retrain: the progress bar follows the job; when it ends the page reloads with the result and v2.
    p.submit("#retrain-btn")
    assert p.el("#job progress#job-progress")
    if p.el("#job").get_attribute("data-state") in ("queued", "running"):  # one job at a time
        assert p.el("#retrain-btn").get_attribute("disabled") is not None
    WebDriverWait(p.d, RETRAIN_WAIT_S).until(ec.presence_of_element_located((By.ID, "job-result")))
    p.ready()
    assert "Đã đăng ký phiên bản v2" in p.text("#job-result"), p.text("#job-result")
    assert p.el("#job-progress").get_attribute("value") == "100" and p.text("#job-state") == "Hoàn tất"
    assert champion(p) == "2"  # same labels: the challenger ties with v1, and the gate lets a tie through
    assert f"agency:{REGISTRY}/v2+router-" in served(url)
    p.check_and_shoot("15-models-retrained")

    # Promote v1 by hand: served at once (no restart), said on the page.
    p.submit("button[data-promote='1']")
    assert "Đã đưa phiên bản v1 vào phục vụ" in p.text("#models-notice")
    assert champion(p) == "1" and p.text("#rollback-target") == "v2"
    assert f"agency:{REGISTRY}/v1+router-" in served(url)
    p.check_and_shoot("16-models-promoted")

    # Roll back: v2 again, and the next rollback would go to v1 (the history walks back).
    p.submit("#rollback-btn")
    assert "Đã quay lui: phiên bản v2 phục vụ trở lại" in p.text("#models-notice")
    assert champion(p) == "2" and p.text("#rollback-target") == "v1"
    assert f"agency:{REGISTRY}/v2+router-" in served(url)
    p.check_and_shoot("17-models-rolled-back")
