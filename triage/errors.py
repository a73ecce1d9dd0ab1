"""Domain errors. The service maps each class to one HTTP status in one place."""


class TriageError(Exception):
    """Base class for every error the core library raises on purpose."""


class InvalidInput(TriageError):
    """The caller gave data we cannot use (maps to 422/400)."""


class NotFound(TriageError):
    """A named thing (agency, case, model) does not exist (maps to 404)."""


class ModelMissing(TriageError):
    """A model folder is absent; the message says which command builds it (maps to 503)."""


class ModelIncompatible(ModelMissing):
    """A model folder is there but unusable: older format, other kind, parts that disagree (maps to 503).

    A subclass of ``ModelMissing`` because the service is in the same state (no usable model) and
    the remedy is the same: the message names the command that rebuilds it.
    """


class NotFitted(TriageError):
    """An estimator was used before fit()."""


class InvalidTransition(TriageError):
    """A workflow action is not allowed in the case's current state (maps to 409)."""


class Conflict(TriageError):
    """The request clashes with what is stored, e.g. a username already taken (maps to 409).

    An Idempotency-Key reused for another body is not one: that is ``IdempotencyKeyReused`` (422).
    """


class AuthenticationFailed(TriageError):
    """No valid credentials: wrong password, expired or forged token, disabled account (maps to 401)."""


class PermissionDenied(TriageError):
    """The account is known but its role may not do this (maps to 403)."""


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key came back with a different body; as the IETF draft says, that is a 422, not a replay."""


class AuditUnavailable(TriageError):
    """The audit trail cannot take a new event (its head is missing or forged): writes stop (maps to 503).

    No action may go unrecorded, so the service refuses writes with this message instead of failing
    half-way; the message names the commands that check and restore the chain.
    """


class Busy(TriageError):
    """Too much of a costly kind of work is already queued (theme reports); try again later (maps to 503)."""


class RateLimited(TriageError):
    """Too many attempts from this account or address for now (maps to 429 with Retry-After).

    ``retry_after`` is the whole number of seconds after which a new attempt may go through.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
