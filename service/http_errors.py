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
}


def status_of(exc: TriageError) -> int:
    """The HTTP status of a domain error: its own class's, else its nearest base's, else 400."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]  # type: ignore[index]
    return 400
