"""The one place where domain errors become HTTP statuses, for the JSON API and the pages alike.

A module of its own so that ``service.web`` and ``service.api`` depend on it, not on ``service.app``.
"""

from __future__ import annotations

from triage.errors import (
    AuditUnavailable,
    AuthenticationFailed,
    Busy,
    Conflict,
    InvalidInput,
    InvalidTransition,
    ModelMissing,
    NotFitted,
    NotFound,
    PermissionDenied,
    RateLimited,
    TriageError,
)

# The most specific class wins (see ``status_of``).
ERROR_STATUS: dict[type[TriageError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    ModelMissing: 503,
    AuditUnavailable: 503,
    Busy: 503,
    NotFitted: 503,
    InvalidTransition: 409,
    Conflict: 409,
    AuthenticationFailed: 401,
    PermissionDenied: 403,
    RateLimited: 429,
}


def status_of(exc: TriageError) -> int:
    """The HTTP status of a domain error: its own class's, else its nearest base's, else 400."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]  # type: ignore[index]
    return 400


def headers_of(exc: TriageError) -> dict[str, str] | None:
    """Headers the status needs: when to retry (429), how to authenticate (401)."""
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, AuthenticationFailed):
        return {"WWW-Authenticate": "Bearer"}
    return None
