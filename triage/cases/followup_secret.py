"""The submitter's secret follow-up link: a random token shown once, only its SHA-256 stored.

The tracking code alone shows a status (``/track``); the token is what lets its holder act on the case
(add information, withdraw, rate the answer). 256 random bits, so it cannot be guessed; hashed at rest, so
a database reader cannot act as the citizen. A lost token cannot be recovered, only replaced
(``issue_token``), which is also how another feature (the receipt e-mail) gets a link to send.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from urllib.parse import quote

from sqlalchemy.orm import Session

from triage.cases import audit
from triage.errors import NotFound
from triage.store.repositories import Submissions
from triage.store.tables import Submission, utcnow

FOLLOW_UP_PATH = "/theo-doi"  # the web page; the API is under /api/v1/follow-up
MAX_TOKEN = 100


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(f"followup:{token}".encode()).hexdigest()


def follow_up_path(tracking_code: str, token: str) -> str:
    """The path of the follow-up page for this submission (prefix the service's public base URL)."""
    return f"{FOLLOW_UP_PATH}/{quote(tracking_code)}?k={quote(token)}"


_SECRET_IN_LINK = re.compile(rf"({re.escape(FOLLOW_UP_PATH)}/[^\s?]+\?k=)[^\s&#]+")
REDACTED = "[đã-ẩn]"


def redact_secrets(text: str) -> str:
    """``text`` with the key of every follow-up link replaced: what a message keeps once it was sent."""
    return _SECRET_IN_LINK.sub(rf"\g<1>{REDACTED}", text)


def follow_up_url(base_url: str, tracking_code: str, token: str) -> str:
    """The full link to put in a message to the submitter, e.g. the receipt e-mail."""
    return base_url.rstrip("/") + follow_up_path(tracking_code, token)


def issue_token(session: Session, tracking_code: str, *, actor: str = "system", at: datetime | None = None) -> str:
    """A new secret for this submission (the old one stops working); audited, in the caller's transaction.

    For a feature that must send the link later than the receipt (the token itself is never stored).
    """
    sub = Submissions(session).by_tracking_code(tracking_code.strip().upper())
    if sub is None:
        raise NotFound(f"no submission with tracking code {tracking_code[:32]!r}")
    token = new_token()
    sub.followup_hash = token_digest(token)
    audit.record(
        session,
        actor=actor,
        action="followup_secret",
        case_id=sub.case_id,
        after={"submission_id": sub.id, "tracking_code": sub.tracking_code},
        at=at or utcnow(),
    )
    session.flush()
    return token


def holder(session: Session, tracking_code: str, token: str | None) -> Submission:
    """The submission this code and token open; NotFound for a wrong code or token alike (nothing to probe)."""
    code = (tracking_code or "").strip().upper()
    sub = Submissions(session).by_tracking_code(code) if 0 < len(code) <= 32 else None
    given = (token or "").strip()
    if (
        sub is None
        or sub.followup_hash is None
        or not given
        or len(given) > MAX_TOKEN
        or not hmac.compare_digest(token_digest(given), sub.followup_hash)
    ):
        raise NotFound("Liên kết theo dõi không đúng hoặc đã được thay bằng liên kết mới.")
    return sub
