"""Helpers for the learning loop: reviewed labels staged in a database (the ``db``/``empty_db`` fixtures, on
both backends, come from tests/db.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from triage.cases.accounts import create_user
from triage.store.db import Database
from triage.store.tables import Case, ReviewedLabel

_names = itertools.count(1)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def add_labels(
    db: Database, rows: list[tuple[str, str]], *, start: datetime = T0, fields: dict[str, str] | None = None
) -> None:
    """Reviewed labels (text, agency code) as a clerk's route decisions, one case each, a minute apart.

    ``fields`` gives each agency's labels a field of state management (agency code -> field name).
    """
    with db.session() as s:
        clerk = _clerk(s)
        for i, (text, agency) in enumerate(rows):
            at = start + timedelta(minutes=i)
            case = Case(state="triaged", kind="phan_anh", agency_code=agency, received_at=at, updated_at=at)
            s.add(case)
            s.flush()
            s.add(
                ReviewedLabel(
                    case_id=case.id,
                    text=text,
                    agency_code=agency,
                    field=(fields or {}).get(agency),
                    kind="phan_anh",
                    suggested_agency_code=None,
                    confirmed=False,
                    model_version=None,
                    reviewer_id=clerk,
                    at=at,
                )
            )


def _clerk(s: Session) -> int:
    user = create_user(s, username=f"clerk-{next(_names)}", password="mật-khẩu-đủ-dài-123", role="clerk")
    return int(user.id)
