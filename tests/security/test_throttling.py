"""Login throttling, limits on the public CPU-costly endpoints, the client address behind named proxies,
and one limit shared by every app instance on the same database (issue 20, item 3).

Two real apps (TestClient) run on one database per backend, as two workers would; time is moved by
the apps' clock, never slept. Each test speaks from its own client address through the trusted proxy
("testclient", the TestClient's peer), so the per-address counters of one test do not touch another's.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.ratelimit import TrustedProxies, client_address
from service.state import ServiceState
from tests.db import BACKENDS, FreshDatabases
from triage.cases.accounts import create_user
from triage.config import Settings
from triage.store.tables import Event

PASSWORD = "mật-khẩu-đủ-dài-123"
ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 6
LOCKOUT_S = 30.0
TEXT_BURST = 3
_n = itertools.count(1)


@dataclass
class Pair:
    """Two apps on one database (two workers), one shared, movable clock."""

    a: TestClient
    b: TestClient
    now: list[datetime]

    @property
    def svc(self) -> ServiceState:
        state: ServiceState = self.a.app.state.svc  # type: ignore[attr-defined]
        return state

    def advance(self, seconds: float) -> None:
        self.now[0] += timedelta(seconds=seconds)

    def account(self) -> str:
        name = f"lan-{next(_n)}"
        with self.svc.db.session() as s:
            create_user(s, username=name, password=PASSWORD, role="clerk")
        return name


def _address() -> dict[str, str]:
    """A fresh client address, as the trusted proxy reports it."""
    return {"X-Forwarded-For": f"203.0.113.{next(_n)}"}


@pytest.fixture(scope="module", params=BACKENDS)
def pair(
    request: pytest.FixtureRequest,
    encoder_path: Path,
    fresh_databases: FreshDatabases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pair]:
    url = fresh_databases.new(str(request.param))
    now = [datetime(2026, 12, 4, 3, 0, tzinfo=UTC)]
    with ExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            settings = Settings(
                encoder_path=encoder_path,
                database_url=url,
                data_dir=tmp_path_factory.mktemp(f"throttle-{name}"),
                model_poll_s=0,
                escalate_interval_s=0,
                forwarded_allow_ips="testclient",
                login_max_failures=ACCOUNT_LIMIT,
                login_max_failures_per_address=ADDRESS_LIMIT,
                login_lockout_s=LOCKOUT_S,
                text_burst=TEXT_BURST,
                text_rate_per_minute=6,  # one more every 10 s
            )
            client = stack.enter_context(TestClient(create_app(settings)))
            client.app.state.svc.clock = lambda: now[0]  # type: ignore[attr-defined]
            clients.append(client)
        yield Pair(clients[0], clients[1], now)


def _token(client: TestClient, username: str, password: str, headers: dict[str, str]) -> Any:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password}, headers=headers)


def _lockouts(pair: Pair) -> list[dict[str, Any]]:
    with pair.svc.db.read() as s:
        return [dict(e.after or {}) for e in s.scalars(select(Event).where(Event.action == "login.lockout"))]


def test_account_lockout_on_the_api_backs_off_and_is_audited(pair: Pair) -> None:
    name, where = pair.account(), _address()
    codes = [_token(pair.a, name, "sai-mật-khẩu-1", where).status_code for _ in range(ACCOUNT_LIMIT)]
    assert codes == [401] * (ACCOUNT_LIMIT - 1) + [429]
    locked = _token(pair.a, name, PASSWORD, where)  # even the right password waits out the lockout
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) == LOCKOUT_S
    assert "too many failed sign-ins for this account" in locked.json()["detail"]
    assert {"account": name, "failures": ACCOUNT_LIMIT, "locked_s": LOCKOUT_S} in _lockouts(pair)
    # The same account from another address: still locked (the account is the target).
    assert _token(pair.a, name, PASSWORD, _address()).status_code == 429

    pair.advance(LOCKOUT_S + 1)
    again = _token(pair.a, name, "sai-mật-khẩu-1", where)  # one more failure: the lockout doubles
    assert again.status_code == 429 and int(again.headers["Retry-After"]) == 2 * LOCKOUT_S
    pair.advance(2 * LOCKOUT_S + 1)
    assert _token(pair.a, name, PASSWORD, where).status_code == 200
    # A success forgets the account's failures: the next wrong password is an ordinary 401.
    assert _token(pair.a, name, "sai-mật-khẩu-1", where).status_code == 401


def test_address_lockout_across_accounts(pair: Pair) -> None:
    where = _address()
    codes = [_token(pair.a, f"khong-co-{next(_n)}", "sai-mật-khẩu-1", where).status_code for _ in range(ADDRESS_LIMIT)]
    assert codes == [401] * (ADDRESS_LIMIT - 1) + [429]
    name = pair.account()
    refused = _token(pair.a, name, PASSWORD, where)
    assert refused.status_code == 429 and "this address" in refused.json()["detail"]
    assert refused.headers["Retry-After"]
    assert _token(pair.a, name, PASSWORD, _address()).status_code == 200  # other addresses are not punished
    assert {"address": where["X-Forwarded-For"], "failures": ADDRESS_LIMIT, "locked_s": LOCKOUT_S} in _lockouts(pair)


def test_odd_usernames_are_counted_not_crashed(pair: Pair) -> None:
    """NUL and control characters in the name (PostgreSQL text refuses NUL): a 401, and counted."""
    where = _address()
    codes = [_token(pair.a, "lan\x00\x01", "sai-mật-khẩu-1", where).status_code for _ in range(ACCOUNT_LIMIT)]
    assert codes == [401] * (ACCOUNT_LIMIT - 1) + [429]


def test_web_login_lockout(pair: Pair) -> None:
    name, where = pair.account(), _address()
    page = pair.a.get("/login", headers=where)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    form = {"csrf_token": match.group(1), "username": name, "password": "sai-mật-khẩu-1", "next": ""}
    codes = [pair.a.post("/login", data=form, headers=where).status_code for _ in range(ACCOUNT_LIMIT)]
    assert codes == [401] * (ACCOUNT_LIMIT - 1) + [429]
    refused = pair.a.post("/login", data={**form, "password": PASSWORD}, headers=where, follow_redirects=False)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) == LOCKOUT_S
    assert "Đăng nhập sai quá nhiều lần" in refused.text
    pair.advance(LOCKOUT_S + 1)
    ok = pair.a.post("/login", data={**form, "password": PASSWORD}, headers=where, follow_redirects=False)
    assert ok.status_code == 303


def test_lockout_is_shared_by_two_apps_on_one_database(pair: Pair) -> None:
    name, where = pair.account(), _address()
    for i in range(ACCOUNT_LIMIT - 1):
        assert _token(pair.a if i % 2 else pair.b, name, "sai-mật-khẩu-1", where).status_code == 401
    assert _token(pair.a, name, "sai-mật-khẩu-1", where).status_code == 429
    assert _token(pair.b, name, PASSWORD, where).status_code == 429  # the other worker knows


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/route", {"text": "Hoàn thuế thu nhập cá nhân chậm"}),
        ("/api/v1/similar", {"text1": "hoàn thuế chậm", "text2": "chậm hoàn thuế"}),
    ],
)
def test_text_endpoints_are_rate_limited_across_apps(pair: Pair, path: str, body: dict[str, str]) -> None:
    where = _address()
    clients = [pair.a, pair.b] * TEXT_BURST
    codes = [c.post(path, json=body, headers=where).status_code for c in clients[: TEXT_BURST + 1]]
    assert codes == [200] * TEXT_BURST + [429]  # one bucket for both apps, not one each
    refused = pair.b.post(path, json=body, headers=where)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 10
    assert "try again in 10 s" in refused.json()["detail"]
    assert pair.a.post(path, json=body, headers=_address()).status_code == 200  # another client: its own bucket
    pair.advance(10)
    assert pair.b.post(path, json=body, headers=where).status_code == 200  # refilled by one


def test_the_client_chosen_leftmost_entry_does_not_escape_the_limit(pair: Pair) -> None:
    """A client prepends a new fake address each call; the proxy appends the real one on the right."""
    real = _address()["X-Forwarded-For"]
    body = {"text1": "a", "text2": "b"}
    codes = [
        pair.a.post("/api/v1/similar", json=body, headers={"X-Forwarded-For": f"10.9.9.{i}, {real}"}).status_code
        for i in range(TEXT_BURST + 1)
    ]
    assert codes == [200] * TEXT_BURST + [429]


def test_client_address_follows_forwarded_allow_ips() -> None:
    proxies = TrustedProxies("127.0.0.1, 10.0.0.0/8")
    # Not from a trusted proxy: the header is the client's own words and counts for nothing.
    assert client_address("198.51.100.7", ["1.2.3.4"], proxies) == "198.51.100.7"
    # From the proxy: the rightmost entry that is not a trusted proxy, whatever the client put on the left.
    assert client_address("127.0.0.1", ["6.6.6.6, 198.51.100.7"], proxies) == "198.51.100.7"
    assert client_address("127.0.0.1", ["6.6.6.6, 198.51.100.7, 10.1.2.3"], proxies) == "198.51.100.7"
    assert client_address("10.0.0.5", ["6.6.6.6", "198.51.100.7"], proxies) == "198.51.100.7"  # two headers
    assert client_address("127.0.0.1", [], proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", ["10.0.0.9"], proxies) == "10.0.0.9"  # only proxies: the leftmost
    assert client_address("203.0.113.1", ["1.2.3.4"], TrustedProxies("")) == "203.0.113.1"  # none named
    assert client_address("203.0.113.1", ["1.2.3.4"], TrustedProxies("*")) == "1.2.3.4"
    assert client_address("::1", ["2001:db8::7"], TrustedProxies("::1")) == "2001:db8::7"
