"""Domain errors. The service maps each class to one HTTP status in one place."""


class TriageError(Exception):
    """Base class for every error the core library raises on purpose."""


class InvalidInput(TriageError):
    """The caller gave data we cannot use (maps to 422/400)."""


class NotFound(TriageError):
    """A named thing (agency, case, model) does not exist (maps to 404)."""


class ModelMissing(TriageError):
    """A model folder is absent; the message says which command builds it (maps to 503)."""


class NotFitted(TriageError):
    """An estimator was used before fit()."""
