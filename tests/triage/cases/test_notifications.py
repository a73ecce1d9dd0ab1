"""The outbox: written with its event (or not at all), delivered over real SMTP, retried with back-off."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from benchmarks.load.server import free_port
from tests.smtp import LocalSmtp
from triage.cases.accounts import Principal, create_user, principal_of
from triage.cases.casework import Casework
from triage.cases.escalation import escalate
from triage.cases.followup_secret import REDACTED
from triage.cases.intake import NewSubmission, receive
from triage.cases.notifications import LINK_BASE, AgencyContacts
from triage.cases.outbox import LoggingSmsSender, Outbox, SmtpSender
from triage.store.db import Database
from triage.store.outbox_tables import OutboxMessage
from triage.store.tables import Case

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)  # a Monday
PASSWORD = "mat-khau-du-dai-123"


def _sub(email: str | None = None, phone: str | None = None, title: str = "Đèn đường hỏng") -> NewSubmission:
    return NewSubmission(
        kind="phan_anh",
        submitter_type="citizen",
        title=title,
        content="Đèn đường trên phố Trần Phú hỏng đã hai tuần, buổi tối rất tối và nguy hiểm.",
        contact_email=email,
        contact_phone=phone,
    )


def _messages(db: Database, case_id: int) -> list[OutboxMessage]:
    with db.read() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case_id).order_by(OutboxMessage.id)))


def _user(db: Database, name: str, role: str, agency: str | None = None) -> Principal:
    with db.session() as s:
        return principal_of(create_user(s, username=name, password=PASSWORD, role=role, agency_code=agency))


def _outbox(db: Database, **kw: object) -> Outbox:
    params: dict[str, object] = {
        "backoff": timedelta(seconds=30),
        "max_attempts": 3,
        "public_base_url": "https://pakn.example.vn",
    }
    params.update(kw)
    return Outbox(db, **params)  # type: ignore[arg-type]


def _drain(db: Database, outbox: Outbox) -> None:
    """Deliver whatever earlier tests of this module left due, so each test counts only its own messages."""
    outbox.deliver({"email": LoggingSmsSender(), "sms": LoggingSmsSender()}, now=T0 + timedelta(days=3650))


def test_receipt_is_queued_with_the_submission_and_only_with_contact_data(db: Database) -> None:
    with_mail = receive(db, _sub(email="an@example.vn"), now=T0)
    with_phone = receive(db, _sub(phone="0912 345 678"), now=T0)
    anonymous = receive(db, _sub(), now=T0)
    [mail] = _messages(db, with_mail.case_id)
    assert (mail.channel, mail.event, mail.recipient, mail.state) == ("email", "receipt", "an@example.vn", "pending")
    assert with_mail.tracking_code in mail.subject and with_mail.tracking_code in mail.body
    assert f"{LINK_BASE}/track?code={with_mail.tracking_code}" in mail.body
    [sms] = _messages(db, with_phone.case_id)
    assert (sms.channel, sms.recipient) == ("sms", "0912 345 678") and with_phone.tracking_code in sms.body
    assert _messages(db, anonymous.case_id) == []


def test_an_event_rolled_back_leaves_no_message(db: Database) -> None:
    case_id = receive(db, _sub(email="binh@example.vn"), now=T0).case_id
    admin = _user(db, "notify-admin", "admin")
    before = len(_messages(db, case_id))

    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.session() as s:
        Casework(s, admin, now=T0).return_for_info(case_id, reason="Vui lòng cho biết số nhà cụ thể.")
        raise Boom  # the transaction rolls back: the state change, its audit event and its message
    assert len(_messages(db, case_id)) == before
    with db.session() as s:
        Casework(s, admin, now=T0).return_for_info(case_id, reason="Vui lòng cho biết số nhà cụ thể.")
    returned = _messages(db, case_id)[-1]
    assert returned.event == "returned" and "số nhà cụ thể" in returned.body
    handler = _user(db, "notify-handler-bxd", "handler", "BXD")
    with db.session() as s:
        w = Casework(s, admin, now=T0)
        w.resubmit(case_id)
        w.route(case_id, agency="BXD")
        w.assign(case_id, assignee=handler.username)
    with db.session() as s:
        w = Casework(s, handler, now=T0)
        w.start(case_id)
        w.respond(case_id, body="Sở Xây dựng đã thay bóng đèn ngày 05/03/2026.")
    answered = _messages(db, case_id)[-1]
    assert answered.event == "answered" and "thay bóng đèn" in answered.body and answered.recipient == "binh@example.vn"


def test_delivered_over_smtp_with_a_stable_message_id(db: Database, smtp_server: LocalSmtp) -> None:
    outbox = _outbox(db)
    _drain(db, outbox)
    receipt = receive(db, _sub(email="chi@example.vn"), now=T0)
    assert receipt.followup_token and receipt.followup_token in _messages(db, receipt.case_id)[0].body
    smtp = SmtpSender(host=smtp_server.host, port=smtp_server.port, sender="PAKN <pakn@example.vn>")
    report = outbox.deliver({"email": smtp}, now=T0 + timedelta(seconds=1))
    assert (report.claimed, report.sent, report.failed) == (1, 1, 0)
    [got] = smtp_server.mailbox.to("chi@example.vn")
    [row] = _messages(db, receipt.case_id)
    assert got["Message-ID"] == row.message_id and row.state == "sent" and row.sent_at is not None
    body = got.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert f"https://pakn.example.vn/track?code={receipt.tracking_code}" in body and LINK_BASE not in body
    assert f"?k={receipt.followup_token}" in body  # the citizen gets the secret link ...
    assert receipt.followup_token not in row.body and f"?k={REDACTED}" in row.body  # ... the stored copy no longer
    assert got["From"] == "PAKN <pakn@example.vn>" and receipt.tracking_code in str(got["Subject"])
    assert outbox.deliver({"email": smtp}, now=T0 + timedelta(seconds=2)).claimed == 0  # sent once, not again


def test_smtp_failure_is_retried_with_exponential_back_off(db: Database, smtp_server: LocalSmtp) -> None:
    outbox = _outbox(db, max_attempts=3)
    _drain(db, outbox)
    case_id = receive(db, _sub(email="dung@example.vn"), now=T0).case_id
    down = SmtpSender(host="127.0.0.1", port=free_port(), timeout=2.0)  # nothing listens there
    t1 = T0 + timedelta(minutes=1)
    report = outbox.deliver({"email": down}, now=t1)
    assert (report.claimed, report.failed, report.sent) == (1, 1, 0)
    [row] = _messages(db, case_id)
    assert row.state == "pending" and row.attempts == 1 and row.next_attempt_at == t1 + timedelta(seconds=30)
    assert "ConnectionRefused" in (row.last_error or "")
    assert outbox.deliver({"email": down}, now=t1 + timedelta(seconds=29)).claimed == 0  # not due yet
    t2 = t1 + timedelta(seconds=30)
    assert outbox.deliver({"email": down}, now=t2).failed == 1
    [row] = _messages(db, case_id)
    assert row.attempts == 2 and row.next_attempt_at == t2 + timedelta(seconds=60)  # doubled
    # the server answers a temporary error: still a failure, still kept
    smtp_server.mailbox.refuse = lambda msg: "451 Try again later"
    up = SmtpSender(host=smtp_server.host, port=smtp_server.port)
    t3 = t2 + timedelta(seconds=60)
    assert outbox.deliver({"email": up}, now=t3).given_up == 1  # third attempt of three: given up, kept
    [row] = _messages(db, case_id)
    assert row.state == "failed" and "451" in (row.last_error or "")
    smtp_server.mailbox.refuse = None
    assert outbox.retry_failed(now=t3) >= 1
    assert outbox.deliver({"email": up}, now=t3 + timedelta(seconds=1)).sent >= 1
    assert [m["To"] for m in smtp_server.mailbox.messages] == ["dung@example.vn"]
    assert _messages(db, case_id)[0].state == "sent"


def test_one_claim_per_message_and_a_stopped_workers_claim_expires(db: Database) -> None:
    outbox = _outbox(db, lease=timedelta(minutes=5), batch=10)
    _drain(db, outbox)
    case_id = receive(db, _sub(email="em@example.vn"), now=T0).case_id
    t = T0 + timedelta(hours=1)
    first = outbox.claim(worker="host-a:1", now=t)
    assert [m.id for m in first] == [m.id for m in _messages(db, case_id)]
    assert outbox.claim(worker="host-b:2", now=t + timedelta(seconds=1)) == []  # taken
    assert outbox.claim(worker="host-b:2", now=t + timedelta(minutes=4)) == []  # the lease still runs
    again = outbox.claim(worker="host-b:2", now=t + timedelta(minutes=6))  # host-a stopped: host-b takes it
    assert [m.id for m in again] == [first[0].id] and again[0].attempts == 2
    assert again[0].message_id == first[0].message_id


def test_sms_goes_through_the_pluggable_sender(db: Database) -> None:
    outbox = _outbox(db)
    _drain(db, outbox)
    receipt = receive(db, _sub(phone="+84 912 000 111"), now=T0)
    sms = LoggingSmsSender()
    assert outbox.deliver({"sms": sms}, now=T0 + timedelta(seconds=1)).sent == 1
    [sent] = sms.sent
    assert sent.recipient == "+84 912 000 111" and receipt.tracking_code in sent.body
    assert outbox.counts()["sent"] >= 1


def test_overdue_case_tells_its_agencys_contact(db: Database) -> None:
    with db.session() as s:
        case = Case(
            state="in_progress",
            kind="phan_anh",
            agency_code="BXD",
            received_at=T0,
            updated_at=T0,
            answer_due=date(2026, 3, 10),
            forward_due=date(2026, 3, 4),
        )
        s.add(case)
        s.flush()
        case_id = case.id
    contacts = AgencyContacts({"BXD": "pakn@moc.gov.vn"})
    with db.session() as s:
        escalate(s, today=date(2026, 3, 20), contacts=contacts)
    with db.session() as s:
        escalate(s, today=date(2026, 3, 21), contacts=contacts)  # the same missed deadline: no second message
    [msg] = _messages(db, case_id)
    assert (msg.event, msg.recipient) == ("overdue", "pakn@moc.gov.vn") and f"/cases/{case_id}" in msg.body
