"""Request dependencies: who is calling, and the rate limit of the public intake."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from service.state import ServiceState, service_state
from triage.cases.accounts import Principal, principal_from_token
from triage.errors import AuthenticationFailed

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)

State = Annotated[ServiceState, Depends(service_state)]


def current_principal(svc: State, token: Annotated[str | None, Depends(oauth2)]) -> Principal:
    """The signed-in staff account; 401 without a valid, unexpired token for an active account."""
    if not token:
        raise AuthenticationFailed("sign in first: send 'Authorization: Bearer <token>' from /api/v1/auth/token")
    with svc.db.read() as s:
        return principal_from_token(s, token, svc.token_secret)


Staff = Annotated[Principal, Depends(current_principal)]


def client_key(request: Request, svc: ServiceState) -> str:
    """The client's address; the first X-Forwarded-For hop only behind a trusted proxy."""
    if svc.settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded.strip():
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


def intake_rate_limit(request: Request, svc: State) -> None:
    """429 with Retry-After once a client has used up its intake allowance."""
    wait = svc.limiter.retry_after(client_key(request, svc))
    if wait:
        raise HTTPException(
            status_code=429,
            detail=f"too many submissions from this address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
