"""No slow work on the event loop: while clients flood the login and the public form, /health stays fast.

A real `triage serve` process (uvicorn, one worker) on loopback. Each test measures /health's median
when idle, then again while 8 clients flood one page, and compares the two: argon2 or the intake
pipeline run on the event loop would queue every /health behind them (the login flood took /health
from 1.3 ms to 1.3 s). The ratio, not a wall-clock threshold, is what is asserted. Off-loop work still
shares two cores and the GIL with the loop, which has taken /health from 1.0 ms to 5.6 ms with nothing
blocked; the bound sits between that and the blocked case.

The logins use a new username each time, so a per-account lockout never turns them into cheap refusals,
and the server lifts the per-address lockout (all clients are 127.0.0.1); the flood lasts only as long
as the measurement.
"""

from __future__ import annotations

import re
import secrets
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.load.server import Server

CLIENTS = 8
SAMPLES = 40
MAX_RATIO = 25.0
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, encoder_path: Path) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("event-loop")
    srv = Server(
        data,
        extra_env={
            "TRIAGE_ENCODER_PATH": str(encoder_path),
            "TRIAGE_JWT_SECRET": secrets.token_urlsafe(40),
            # Every flooding client shares one address: lift its lockout so the flood keeps running argon2.
            "TRIAGE_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
        },
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def health_p50(url: str) -> float:
    """Median seconds of ``SAMPLES`` sequential GET /health on one keep-alive connection."""
    times = []
    with httpx.Client(base_url=url, timeout=60.0) as c:
        c.get("/health")
        for _ in range(SAMPLES):
            start = time.perf_counter()
            assert c.get("/health").status_code == 200
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def flood(url: str, page: str, post: Callable[[httpx.Client, str, int], httpx.Response]) -> tuple[float, list[int]]:
    """/health's median while ``CLIENTS`` clients post to ``page`` back to back; and the flood's statuses."""
    stop = threading.Event()
    started = threading.Barrier(CLIENTS + 1)
    statuses: list[int] = []

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=120.0) as c:
            token = TOKEN.search(c.get(page).text)
            assert token is not None
            first = True
            i = 0
            while not stop.is_set():
                statuses.append(post(c, token.group(1), n * 100_000 + i).status_code)
                i += 1
                if first:  # every client has a request in flight or done before measuring
                    first = False
                    started.wait()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        started.wait(timeout=300)
        busy = health_p50(url)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=300)
    return busy, statuses


def wrong_login(c: httpx.Client, token: str, i: int) -> httpx.Response:
    form = {"csrf_token": token, "username": f"khong-co-{i}", "password": f"sai-mat-khau-{i}"}
    return c.post("/login", data=form, follow_redirects=False)


def submission(c: httpx.Client, token: str, i: int) -> httpx.Response:
    form = {
        "csrf_token": token,
        "kind": "phan_anh",
        "submitter_type": "citizen",
        "title": f"Đường ngập sau mưa lớn số {i}",
        "content": f"Đoạn đường số {i} trước chợ ngập sâu mỗi khi mưa lớn, xe máy chết máy, đề nghị khơi thông cống.",
    }
    return c.post("/", data=form, follow_redirects=False)


def test_login_flood_leaves_health_fast(server: Server) -> None:
    idle = health_p50(server.url)
    busy, statuses = flood(server.url, "/login", wrong_login)
    assert 401 in statuses and max(statuses) < 500, sorted(set(statuses))  # real checks ran; throttled ones may 429
    assert busy <= MAX_RATIO * idle, f"/health p50 {busy * 1000:.1f} ms under the login flood, {idle * 1000:.1f} idle"


def test_intake_flood_leaves_health_fast(server: Server) -> None:
    idle = health_p50(server.url)
    busy, statuses = flood(server.url, "/", submission)
    assert 303 in statuses and max(statuses) < 500, sorted(set(statuses))
    assert busy <= MAX_RATIO * idle, f"/health p50 {busy * 1000:.1f} ms under the intake flood, {idle * 1000:.1f} idle"
