"""The key that signs access tokens and CSRF tokens: never weak, never different per worker.

Production (``TRIAGE_ENV=production``) takes it from ``TRIAGE_JWT_SECRET`` only and refuses to start
without one. Dev mode without one makes a random key once and keeps it in the data folder (mode
0600): every worker of ``triage serve --workers N`` and every restart then sign with the same key, so
sessions survive a restart and a token issued by one worker is valid on the others, while ``make
serve`` still needs no configuration. A configured key shorter than 32 bytes is refused in every mode.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from triage.config import Settings

log = logging.getLogger("triage.service")

MIN_SECRET = 32  # bytes: HS256 keys shorter than its 256-bit output can be brute-forced from one token
SECRET_FILE = "jwt-secret"
MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


class UnsafeConfiguration(RuntimeError):
    """Settings that would weaken security; the service refuses to start."""


def _strong(secret: str, where: str) -> str:
    size = len(secret.encode("utf-8"))
    if size < MIN_SECRET:
        raise UnsafeConfiguration(
            f"{where} must have at least {MIN_SECRET} bytes (it has {size}); make one with: {MAKE_ONE}"
        )
    return secret


def token_secret(settings: Settings) -> str:
    """The configured key; in dev mode without one, the data folder's (made on first use)."""
    if settings.jwt_secret is not None:
        return _strong(settings.jwt_secret.get_secret_value(), "TRIAGE_JWT_SECRET")
    if settings.env == "production":
        raise UnsafeConfiguration(
            f"production mode needs TRIAGE_JWT_SECRET (at least {MIN_SECRET} random bytes, the same for every "
            f"worker and host); make one with: {MAKE_ONE}"
        )
    return dev_secret(Path(settings.data_dir) / SECRET_FILE)


def dev_secret(path: Path) -> str:
    """The key stored at ``path``, made there first if missing.

    Workers starting together race to create it: each writes its own candidate to a private temporary
    file and hard-links it into place, which fails when the file exists, so exactly one candidate wins
    and every worker then reads that one (never a half-written file).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(candidate, path)
            log.warning("dev mode: made a token signing key in %s (production needs TRIAGE_JWT_SECRET)", path)
        except FileExistsError:
            pass  # another worker's key won: use it
        finally:
            candidate.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("%s was readable by other users; its mode is now 0600", path)
    return _strong(path.read_text(encoding="utf-8").strip(), str(path))
