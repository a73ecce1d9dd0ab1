"""Accounts: argon2 hashes, expiring tokens, the role table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from triage.cases.accounts import (
    PERMISSIONS,
    Principal,
    Role,
    authenticate,
    create_user,
    hash_password,
    issue_token,
    principal_from_token,
    verify_password,
)
from triage.errors import AuthenticationFailed, Conflict, InvalidInput, PermissionDenied
from triage.store.db import Database

SECRET = "s" * 40


def test_argon2_hash_and_verify() -> None:
    h = hash_password("mật khẩu dài đủ")
    assert h.startswith("$argon2id$") and "mật khẩu" not in h
    assert verify_password(h, "mật khẩu dài đủ")
    assert not verify_password(h, "mật khẩu sai rồi")
    assert not verify_password("not-a-hash", "anything")
    assert hash_password("mật khẩu dài đủ") != h  # salted
    with pytest.raises(InvalidInput, match="at least 10"):
        hash_password("short")


def test_create_and_authenticate(db: Database) -> None:
    with db.session() as s:
        create_user(s, username="acc-handler", password="password-123", role="Handler", agency_code="Bộ Y tế")
    with db.read() as s:
        who = authenticate(s, "acc-handler", "password-123")
        assert (who.role, who.agency_code) == (Role.HANDLER, "BYT")
        with pytest.raises(AuthenticationFailed):
            authenticate(s, "acc-handler", "wrong-password")
        with pytest.raises(AuthenticationFailed):
            authenticate(s, "nobody", "password-123")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"username": "acc-h2", "role": "handler"}, "needs --agency"),
        ({"username": "acc-x", "role": "boss"}, "unknown role"),
        ({"username": "two words", "role": "clerk"}, "without spaces"),
        ({"username": "acc-y", "role": "handler", "agency_code": "Bộ Không Có"}, "no agency"),
    ],
)
def test_create_user_refuses_bad_accounts(db: Database, kwargs: dict[str, str], error: str) -> None:
    with pytest.raises(InvalidInput, match=error), db.session() as s:
        create_user(s, password="password-123", **kwargs)


def test_duplicate_username_is_a_conflict(db: Database) -> None:
    with db.session() as s:
        create_user(s, username="acc-dup", password="password-123", role="clerk")
    with pytest.raises(Conflict), db.session() as s:
        create_user(s, username="acc-dup", password="password-123", role="clerk")


def test_tokens_expire_and_resist_forgery(db: Database) -> None:
    with db.session() as s:
        create_user(s, username="acc-token", password="password-123", role="analyst")
    with db.read() as s:
        who = authenticate(s, "acc-token", "password-123")
        token = issue_token(who, SECRET, minutes=5)
        assert principal_from_token(s, token, SECRET).username == "acc-token"
        old = issue_token(who, SECRET, minutes=5, now=datetime.now(UTC) - timedelta(minutes=6))
        with pytest.raises(AuthenticationFailed, match="expired"):
            principal_from_token(s, old, SECRET)
        with pytest.raises(AuthenticationFailed, match="invalid"):
            principal_from_token(s, token, "another-secret-" * 3)
        with pytest.raises(AuthenticationFailed, match="invalid"):
            principal_from_token(s, token[:-3] + "abc", SECRET)


def test_role_table() -> None:
    clerk = Principal(1, "c", Role.CLERK)
    handler = Principal(2, "h", Role.HANDLER, "BTC")
    analyst = Principal(3, "a", Role.ANALYST)
    clerk.require("triage")
    with pytest.raises(PermissionDenied, match="may not respond"):
        clerk.require("respond")
    with pytest.raises(PermissionDenied):
        analyst.require("reject")
    analyst.require("stats.read")
    assert handler.sees("BTC") and not handler.sees("BYT") and not handler.sees(None)
    assert clerk.sees(None) and analyst.masked and not clerk.masked
    assert all(Role.ADMIN in roles for roles in PERMISSIONS.values())
