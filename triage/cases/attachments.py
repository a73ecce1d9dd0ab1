"""Files on record: any feature's uploads as rows, and who may read a case's files.

A feature checks its files (``triage.store.files.check_files``), writes them to the file store, then
calls ``add_files`` in its transaction: the rows and (unless the caller's own event carries them) an
``attach`` audit event with every file's SHA-256. A case's files are read by staff who see the case:
clerks and admins, a handler of the case's agency; an analyst works on masked data and gets no files,
and nobody without an account ever does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.cases.accounts import Principal
from triage.errors import NotFound
from triage.store.citizen_tables import Attachment
from triage.store.files import CheckedFile
from triage.store.repositories import Cases
from triage.store.tables import utcnow


def file_entry(a: Attachment) -> dict[str, Any]:
    """What the audit trail keeps of a file: enough to prove which bytes were received."""
    return {"id": a.id, "sha256": a.sha256, "type": a.media_type, "size": a.size, "filename": a.filename}


def add_files(
    session: Session,
    files: list[CheckedFile],
    *,
    owner: str,
    owner_id: int | None,
    case_id: int | None,
    actor: str,
    at: datetime | None = None,
    audit_event: bool = False,
) -> list[Attachment]:
    """Rows for files already in the file store; ``audit_event`` records an ``attach`` event for them."""
    moment = at or utcnow()
    rows = [
        Attachment(
            owner=owner,
            owner_id=owner_id,
            case_id=case_id,
            sha256=f.sha256,
            filename=f.filename,
            media_type=f.media_type,
            size=f.size,
            uploaded_by=actor[:64],
            created_at=moment,
        )
        for f in files
    ]
    session.add_all(rows)
    session.flush()
    if rows and audit_event:
        audit.record(
            session,
            actor=actor,
            action="attach",
            case_id=case_id,
            after={"owner": owner, "owner_id": owner_id, "files": [file_entry(a) for a in rows]},
            at=moment,
        )
    return rows


def _case_visible(session: Session, who: Principal, case_id: int) -> None:
    case = Cases(session).get(case_id)
    if case is None or not who.sees(case.agency_code):
        raise NotFound(f"case {case_id} not found")
    who.require("files.read")


def case_files(session: Session, who: Principal, case_id: int) -> list[Attachment]:
    """The case's files, oldest first, for an account that may read them (403 for analysts)."""
    _case_visible(session, who, case_id)
    rows = session.scalars(select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id))
    return list(rows)


def case_file(session: Session, who: Principal, case_id: int, attachment_id: int) -> Attachment:
    """One file of a case; NotFound when it is not that case's (ids of other cases cannot be probed)."""
    _case_visible(session, who, case_id)
    row = session.get(Attachment, attachment_id)
    if row is None or row.case_id != case_id:
        raise NotFound(f"file {attachment_id} not found")
    return row
