"""Request dependencies: who is calling, from which address, and the limits on public endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from service.observability import note_user
from service.ratelimit import client_address
from service.state import Limiter, ServiceState, service_state
from triage.cases.accounts import Principal, authenticate, principal_from_token
from triage.errors import AuthenticationFailed

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)

State = Annotated[ServiceState, Depends(service_state)]


def current_principal(svc: State, token: Annotated[str | None, Depends(oauth2)]) -> Principal:
    """The signed-in staff account; 401 without a valid, unexpired token for an active account."""
    if not token:
        raise AuthenticationFailed("sign in first: send 'Authorization: Bearer <token>' from /api/v1/auth/token")
    with svc.db.read() as s:
        who = principal_from_token(s, token, svc.token_secret)
    note_user(who.user_id)
    return who


Staff = Annotated[Principal, Depends(current_principal)]


def client_key(request: Request, svc: ServiceState) -> str:
    """The client's address: the direct peer, or what the operator's trusted proxies say it is."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"), svc.proxies)


def _limited(limiter: Limiter | None, request: Request, svc: ServiceState, what: str) -> None:
    if limiter is None:
        return
    wait = limiter.retry_after(client_key(request, svc))
    if wait:
        raise HTTPException(
            status_code=429,
            detail=f"too many {what} from this address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def intake_rate_limit(request: Request, svc: State) -> None:
    """429 with Retry-After once a client has used up its intake allowance."""
    _limited(svc.limiter, request, svc, "submissions")


def text_rate_limit(request: Request, svc: State) -> None:
    """429 with Retry-After once a client has used up its allowance of text scoring (CPU-costly)."""
    _limited(svc.text_limiter, request, svc, "text requests")


def sign_in(svc: ServiceState, request: Request, username: str, password: str) -> Principal:
    """Check the password under the login throttle (API and web alike).

    Raises RateLimited (429) while the account or this address is locked out, before any hashing,
    and when this failure starts a lockout; AuthenticationFailed (401) for a plain wrong password.
    """
    address = client_key(request, svc)
    if svc.logins is not None:
        svc.logins.check(username, address)
    try:
        with svc.db.read() as s:
            who = authenticate(s, username, password)
    except AuthenticationFailed:
        if svc.logins is not None:
            svc.logins.failed(username, address)
        raise
    if svc.logins is not None:
        svc.logins.succeeded(username)
    return who
