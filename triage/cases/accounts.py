"""Staff accounts: roles, what each role may do, argon2 password hashes and expiring access tokens.

Roles follow the PAKN process: a *clerk* runs the intake queue and routes; a *handler* works only
on its own agency's cases (another agency's case does not exist for it: 404, never 403, so case
numbers of other agencies cannot be probed); an *analyst* reads reports and statistics with
personal data masked; an *admin* may do everything. The permission table lives here, in the core,
so the HTTP service, the CLI and any later UI enforce the same rules.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, PermissionDenied
from triage.nlp.agencies import default_registry
from triage.store.tables import User

TOKEN_ALGORITHM = "HS256"
MIN_PASSWORD = 10


class Role(StrEnum):
    CLERK = "clerk"
    HANDLER = "handler"
    ANALYST = "analyst"
    ADMIN = "admin"
    # Resolution-57 monitoring (triage.kpi): an agency's reporter enters its figures, the coordinating
    # office verifies or returns them, a leader reads the dashboards.
    REPORTER = "reporter"
    COORDINATOR = "coordinator"
    LEADER = "leader"


_ALL = frozenset({Role.CLERK, Role.HANDLER, Role.ANALYST, Role.ADMIN})  # everyone who works on cases
_KPI_READERS = frozenset({Role.REPORTER, Role.COORDINATOR, Role.LEADER, Role.ANALYST, Role.ADMIN})
_STAFF = frozenset({Role.CLERK, Role.HANDLER, Role.ADMIN})

# Permission -> roles allowed. Handlers are further scoped to their agency's cases (see ``Principal.sees``).
PERMISSIONS: dict[str, frozenset[Role]] = {
    "cases.read": _ALL,
    "stats.read": frozenset({Role.ANALYST, Role.ADMIN}),
    "triage": frozenset({Role.CLERK, Role.ADMIN}),
    "moderate": frozenset({Role.CLERK, Role.ADMIN}),  # confirm or dismiss an abuse / spam flag
    "assign": _STAFF,
    "start": frozenset({Role.HANDLER, Role.ADMIN}),
    "transfer": _STAFF,
    "accept_transfer": _STAFF,
    "return_for_info": _STAFF,
    "resubmit": frozenset({Role.CLERK, Role.ADMIN}),
    "respond": frozenset({Role.HANDLER, Role.ADMIN}),
    "publish": frozenset({Role.HANDLER, Role.ADMIN}),  # publish / withdraw an answered case on /hoi-dap (consent)
    "close": _STAFF,
    "reopen": _STAFF,
    "reject": _STAFF,
    "mark_duplicate": _STAFF,
    "merge": _STAFF,
    "escalate": frozenset({Role.ADMIN}),
    # A case's attached files (handlers only for their agency's cases); analysts see masked data, no files.
    "files.read": _STAFF,
    "models.read": frozenset({Role.HANDLER, Role.ANALYST, Role.ADMIN}),
    # Retrain and promote / rollback are further scoped: a handler only over a model whose effect stays
    # within its own agency (see ``Principal.require_over``); the one served model routes every agency.
    "models.retrain": frozenset({Role.HANDLER, Role.ADMIN}),
    "models.promote": frozenset({Role.HANDLER, Role.ADMIN}),  # promote / rollback the served champion
    "models.reload": frozenset({Role.ADMIN}),
    # Monitoring: a reporter reads and submits its own agency's reports only (``Principal.sees``).
    "kpi.read": _KPI_READERS,
    "kpi.submit": frozenset({Role.REPORTER, Role.ADMIN}),
    "kpi.verify": frozenset({Role.COORDINATOR, Role.ADMIN}),  # verify, return, lock
    "kpi.dashboard": frozenset({Role.COORDINATOR, Role.LEADER, Role.ANALYST, Role.ADMIN}),
    "kpi.admin": frozenset({Role.ADMIN}),  # load the registry, make reports due, escalate
}


@dataclass(frozen=True)
class Principal:
    """Who is acting: enough to check permissions without touching the database again."""

    user_id: int | None
    username: str
    role: Role
    agency_code: str | None = None

    def require(self, permission: str) -> None:
        """Raise PermissionDenied unless this role holds ``permission``."""
        if self.role not in PERMISSIONS.get(permission, frozenset()):
            raise PermissionDenied(f"role {self.role.value!r} may not {permission.replace('_', ' ')}")

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS.get(permission, frozenset())

    def may_over(self, permission: str, agencies: Collection[str] | None) -> bool:
        """``may``, for an action whose effect reaches ``agencies`` (None: every agency).

        A handler acts for its own agency only: an action that changes what other agencies get (the
        shared routing model routes every agency's cases) is beyond it, whatever its role allows.
        """
        if not self.may(permission):
            return False
        return not self.scoped or (agencies is not None and set(agencies) <= {self.agency_code})

    def require_over(self, permission: str, agencies: Collection[str] | None) -> None:
        """Raise PermissionDenied unless ``may_over``; the message says why a handler may not."""
        self.require(permission)
        if not self.may_over(permission, agencies):
            raise PermissionDenied(
                f"{permission.replace('_', ' ')} reaches other agencies than {self.agency_code!r}: "
                "an admin's right (a handler acts for its own agency only)"
            )

    @property
    def scoped(self) -> bool:
        """True when this account sees only its own agency's cases (a handler) or reports (a reporter)."""
        return self.role in (Role.HANDLER, Role.REPORTER)

    def sees(self, agency_code: str | None) -> bool:
        """Whether a case held by ``agency_code`` exists for this account."""
        return not self.scoped or (agency_code is not None and agency_code == self.agency_code)

    @property
    def masked(self) -> bool:
        """Analysts see texts with personal data masked and no contact details."""
        return self.role is Role.ANALYST


EVERY_AGENCY: Collection[str] | None = None  # the reach of the shared routing model: every agency's cases

SYSTEM = Principal(user_id=None, username="system", role=Role.ADMIN)


@lru_cache(maxsize=1)
def _hasher() -> Any:
    return PasswordHasher()


def hash_password(password: str) -> str:
    """argon2id hash with the library's current recommended parameters."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters")
    return str(_hasher().hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def parse_role(role: str) -> Role:
    try:
        return Role(role.strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}: expected one of {', '.join(r.value for r in Role)}") from None


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str | Role,
    agency_code: str | None = None,
    actor: str = "system",
) -> User:
    """Add an account; a handler must name the agency it works for (checked against the registry). Audited."""
    name = username.strip()
    if not name or len(name) > 64 or not name.isprintable() or any(c.isspace() for c in name):
        raise InvalidInput("username must be 1-64 printable characters without spaces")
    the_role = role if isinstance(role, Role) else parse_role(role)
    code = None
    if agency_code:
        try:
            code = default_registry().resolve(agency_code).code
        except NotFound as exc:
            raise InvalidInput(f"agency: {exc}") from None
    if the_role is Role.HANDLER and code is None:
        raise InvalidInput("a handler account needs --agency (the agency whose cases it handles)")
    if the_role is Role.REPORTER and code is None:
        raise InvalidInput("a reporter account needs --agency (the agency whose reports it enters)")
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(
        username=name, password_hash=hash_password(password), role=the_role.value, agency_code=code, active=True
    )
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="account_create", after=_account(user))
    return user


def _account(user: User) -> dict[str, object]:
    return {"user_id": user.id, "username": user.username, "role": user.role, "agency_code": user.agency_code,
            "active": user.active}  # fmt: skip


def update_user(
    session: Session, username: str, *, actor: str, role: str | Role | None = None, active: bool | None = None
) -> User:
    """Change an account's role or disable / enable it; audited with the account before and after."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise NotFound(f"no account {username!r}")
    before = _account(user)
    if role is not None:
        the_role = role if isinstance(role, Role) else parse_role(role)
        if the_role in (Role.HANDLER, Role.REPORTER) and user.agency_code is None:
            raise InvalidInput(f"a {the_role.value} account needs an agency; create the account again with --agency")
        user.role = the_role.value
    if active is not None:
        user.active = active
    session.flush()
    after = _account(user)
    if after != before:
        audit.record(session, actor=actor, action="account_update", before=before, after=after)
    return user


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def principal_of(user: User) -> Principal:
    return Principal(user_id=user.id, username=user.username, role=Role(user.role), agency_code=user.agency_code)


def authenticate(session: Session, username: str, password: str) -> Principal:
    """The account for these credentials; one vague error for every failure (no user enumeration)."""
    if "\x00" in username or "\x00" in password:
        raise AuthenticationFailed("wrong username or password")
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        # Spend the same time as a real check, so response times do not reveal which names exist.
        verify_password(_dummy_hash(), password)
        raise AuthenticationFailed("wrong username or password")
    if not verify_password(user.password_hash, password) or not user.active:
        raise AuthenticationFailed("wrong username or password")
    return principal_of(user)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return str(_hasher().hash(secrets.token_urlsafe(16)))


def issue_token(principal: Principal, secret: str, minutes: int, now: datetime | None = None) -> str:
    """A signed JWT naming the user; it expires after ``minutes``."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": principal.username,
        "uid": principal.user_id,
        "role": principal.role.value,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=minutes)).timestamp()),
    }
    return str(jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM))


def principal_from_token(session: Session, token: str, secret: str) -> Principal:
    """Check the token's signature and expiry, then reload the account (a disabled user is out at once)."""
    try:
        claims = jwt.decode(token, secret, algorithms=[TOKEN_ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("access token expired; sign in again") from None
    except jwt.PyJWTError:
        raise AuthenticationFailed("invalid access token") from None
    user = session.scalar(select(User).where(User.username == str(claims["sub"])))
    if user is None or not user.active:
        raise AuthenticationFailed("account unknown or disabled")
    return principal_of(user)
