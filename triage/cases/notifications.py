"""What the two-way channel tells people, written to the outbox in the same transaction as the event.

A receipt goes to the citizen who gave an e-mail (an SMS when only a phone was given), so do "your case
was returned for more information" and "your case was answered"; an overdue case goes to its agency's
contact (settings ``notify_agency_contacts``). The message is a row of ``outbox`` added to the caller's
session: the event's rollback takes the message with it, its commit makes it due. Delivery is
``triage.cases.outbox``'s job. Links are written against ``LINK_BASE``, replaced by the service's
public address when the message is sent, so no caller here needs the settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from triage.store.outbox_tables import OutboxMessage
from triage.store.repositories import Submissions
from triage.store.tables import Case, Submission, utcnow

LINK_BASE = "{{public_base_url}}"
EMAIL, SMS = "email", "sms"
EVENTS = ("receipt", "returned", "answered", "overdue")
_SIGNATURE = "\n\n--\nHệ thống tiếp nhận phản ánh, kiến nghị (PAKN). Thư tự động, vui lòng không trả lời thư này."
MAX_QUOTE = 4000


@dataclass(frozen=True)
class Notice:
    """A message's words: one subject, a body for e-mail and a short text for SMS."""

    subject: str
    body: str
    sms: str


def new_message_id() -> str:
    """The Message-ID header, fixed at enqueue: every retry sends the same one (a receiver can drop repeats)."""
    return f"<{uuid.uuid4().hex}@pakn-triage>"


def track_link(tracking_code: str) -> str:
    return f"{LINK_BASE}/track?code={tracking_code}"


def receipt_notice(case: Case, submission: Submission, *, follow_up_url: str | None = None) -> Notice:
    """The receipt: tracking code, deadlines and (when the caller has one) the secret follow-up link.

    The one place its words are made, so a follow-up link added later reaches e-mail and SMS alike.
    """
    code = submission.tracking_code
    due = (case.answer_due or submission.answer_due).strftime("%d/%m/%Y")
    lines = [
        "Kính gửi Quý ông/bà,",
        "",
        f"Hệ thống đã tiếp nhận phản ánh, kiến nghị của Quý ông/bà: «{submission.title[:200]}».",
        f"Mã theo dõi: {code}",
        f"Thời hạn trả lời dự kiến: {due}.",
        f"Tra cứu tình trạng: {track_link(code)}",
    ]
    if follow_up_url:
        lines.append(
            f"Bổ sung thông tin, rút phản ánh hoặc đánh giá câu trả lời (giữ kín đường dẫn này): {follow_up_url}"
        )
    sms = f"PAKN: da tiep nhan phan anh, ma theo doi {code}, han tra loi {due}."
    if follow_up_url:
        sms += f" Theo doi: {follow_up_url}"
    return Notice(subject=f"Đã tiếp nhận phản ánh, kiến nghị - mã {code}", body="\n".join(lines) + _SIGNATURE, sms=sms)


def returned_notice(submission: Submission, reason: str) -> Notice:
    code = submission.tracking_code
    body = (
        "Kính gửi Quý ông/bà,\n\n"
        f"Phản ánh, kiến nghị mã {code} cần bổ sung thông tin để được xử lý.\n"
        f"Nội dung cần bổ sung: {reason[:MAX_QUOTE]}\n"
        f"Tra cứu: {track_link(code)}"
    )
    sms = f"PAKN: phan anh {code} can bo sung thong tin. Xem chi tiet tai trang tra cuu."
    return Notice(subject=f"Đề nghị bổ sung thông tin - mã {code}", body=body + _SIGNATURE, sms=sms)


def answered_notice(submission: Submission, answer: str) -> Notice:
    code = submission.tracking_code
    quoted = answer if len(answer) <= MAX_QUOTE else answer[:MAX_QUOTE] + " [...]"
    body = (
        "Kính gửi Quý ông/bà,\n\n"
        f"Phản ánh, kiến nghị mã {code} đã được cơ quan có thẩm quyền trả lời:\n\n{quoted}\n\n"
        f"Toàn văn câu trả lời: {track_link(code)}"
    )
    sms = f"PAKN: phan anh {code} da duoc tra loi. Xem tai trang tra cuu."
    return Notice(subject=f"Đã có câu trả lời - mã {code}", body=body + _SIGNATURE, sms=sms)


def overdue_notice(case: Case, deadline: str, due: str, days_overdue: int) -> Notice:
    what = "chuyển xử lý" if deadline == "forward" else "trả lời"
    body = (
        f"Hồ sơ phản ánh, kiến nghị số {case.id} đã quá hạn {what} ({due}, quá {days_overdue} ngày làm việc).\n"
        f"Xem hồ sơ: {LINK_BASE}/cases/{case.id}"
    )
    sms = f"PAKN: ho so {case.id} qua han {deadline} {due}."
    return Notice(subject=f"Hồ sơ {case.id} quá hạn {what}", body=body + _SIGNATURE, sms=sms)


def enqueue(
    session: Session,
    *,
    event: str,
    channel: str,
    recipient: str,
    notice: Notice,
    case_id: int | None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Add one message to the caller's transaction (due at once)."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    moment = now or utcnow()
    row = OutboxMessage(
        message_id=new_message_id(),
        channel=channel,
        event=event,
        case_id=case_id,
        recipient=recipient[:320],
        subject=notice.subject[:500],
        body=notice.body if channel == EMAIL else notice.sms,
        state="pending",
        attempts=0,
        next_attempt_at=moment,
        created_at=moment,
    )
    session.add(row)
    return row


def _to_submitter(session: Session, sub: Submission, event: str, notice: Notice, now: datetime | None) -> int:
    """E-mail when the submitter gave one, else SMS when a phone was given; nothing without contact data."""
    if sub.contact_email:
        enqueue(
            session,
            event=event,
            channel=EMAIL,
            recipient=sub.contact_email,
            notice=notice,
            case_id=sub.case_id,
            now=now,
        )
        return 1
    if sub.contact_phone:
        enqueue(
            session, event=event, channel=SMS, recipient=sub.contact_phone, notice=notice, case_id=sub.case_id, now=now
        )
        return 1
    return 0


def notify_receipt(
    session: Session,
    case: Case,
    submission: Submission,
    *,
    follow_up_url: str | None = None,
    now: datetime | None = None,
) -> int:
    """Queue the receipt for ``submission``; returns how many messages were queued (0 or 1)."""
    return _to_submitter(
        session, submission, "receipt", receipt_notice(case, submission, follow_up_url=follow_up_url), now
    )


def notify_submitters(session: Session, case: Case, event: str, text: str, *, now: datetime | None = None) -> int:
    """Queue "returned" (``text`` = the reason) or "answered" (``text`` = the answer) to every submitter of the case."""
    queued = 0
    for sub in Submissions(session).of_case(case.id):
        notice = returned_notice(sub, text) if event == "returned" else answered_notice(sub, text)
        queued += _to_submitter(session, sub, event, notice, now)
    return queued


@dataclass(frozen=True)
class AgencyContacts:
    """Who hears of an agency's overdue cases: its own contact, else the default one (None: nobody)."""

    by_agency: Mapping[str, str]
    default: str | None = None

    def of(self, agency_code: str | None) -> str | None:
        if agency_code and agency_code in self.by_agency:
            return self.by_agency[agency_code]
        return self.default


def notify_overdue(
    session: Session,
    case: Case,
    contacts: AgencyContacts,
    *,
    deadline: str,
    due: str,
    days_overdue: int,
    now: datetime | None = None,
) -> int:
    """Queue "case overdue" to the contact of the case's agency; 0 when it has none."""
    to = contacts.of(case.agency_code)
    if not to:
        return 0
    notice = overdue_notice(case, deadline, due, days_overdue)
    enqueue(session, event="overdue", channel=EMAIL, recipient=to, notice=notice, case_id=case.id, now=now)
    return 1
