"""OAuth2 password flow: username + password in, a short-lived bearer token out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from service.deps import State, sign_in
from service.schemas.auth import TokenOut
from service.state import ServiceState, in_lane
from triage.cases.accounts import issue_token

router = APIRouter(prefix="/api/v1/auth", tags=["accounts"])


@router.post(
    "/token",
    response_model=TokenOut,
    responses={401: {"description": "Wrong username or password"}, 429: {"description": "Locked out for now"}},
)
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, svc: State) -> TokenOut:
    """A bearer token; repeated failures lock the account and the address out for a while (429, Retry-After).

    Async only to queue for the password lane (``in_lane``); the check runs in a thread.
    """
    return await in_lane(svc.password_lane, _token, form, request, svc)


def _token(form: OAuth2PasswordRequestForm, request: Request, svc: ServiceState) -> TokenOut:
    who = sign_in(svc, request, form.username, form.password)
    minutes = svc.settings.token_minutes
    return TokenOut(
        access_token=issue_token(who, svc.token_secret, minutes),  # real time: what PyJWT checks
        expires_in=minutes * 60,
        role=who.role.value,
    )
