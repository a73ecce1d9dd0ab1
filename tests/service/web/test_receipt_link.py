"""The receipt e-mail's secret follow-up link works end to end: filed with an e-mail, the queued message's
link, resolved against ``public_base_url`` as the delivery worker does, opens this submission's follow-up
page with its actions over HTTP; the same page with a made-up key is not found."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from tests.service.conftest import Service, unique
from triage.cases.followup_secret import FOLLOW_UP_PATH, new_token
from triage.cases.notifications import EMAIL, LINK_BASE
from triage.cases.outbox import Outbox
from triage.store.outbox_tables import OutboxMessage
from triage.store.tables import Submission


def test_the_receipt_link_opens_the_follow_up_page(service: Service) -> None:
    email = f"{unique('nguoi-dan-')}@example.vn"
    cid = service.submit(contact={"name": "Trần Thị Hoa", "email": email}, publish_consent=True)
    settings = service.svc.settings
    with service.svc.db.read() as s:
        sub = s.scalars(select(Submission).where(Submission.case_id == cid)).one()
        code = sub.tracking_code
        assert sub.publish_consent is True  # Service.submit passes the consent through
        (row,) = s.scalars(
            select(OutboxMessage).where(OutboxMessage.case_id == cid, OutboxMessage.event == "receipt")
        ).all()
        assert (row.channel, row.recipient) == (EMAIL, email)
        assert LINK_BASE + FOLLOW_UP_PATH + "/" in row.body  # stored against the placeholder, not an address
        # what the worker sends: the same resolution it applies to each message it claims
        sent = Outbox.from_settings(service.svc.db, settings)._outgoing(row)
    base = settings.public_base_url.rstrip("/")
    links = re.findall(re.escape(base + FOLLOW_UP_PATH) + r"/\S+", sent.body)
    assert len(links) == 1, sent.body
    assert LINK_BASE not in sent.body
    link = urlsplit(links[0])
    assert link.path == f"{FOLLOW_UP_PATH}/{code}" and parse_qs(link.query)["k"][0]

    page = service.client.get(f"{link.path}?{link.query}")
    assert page.status_code == 200, page.text[:500]
    assert code in page.text
    assert f'action="{FOLLOW_UP_PATH}/{code}/rut"' in page.text  # a new case can be withdrawn through the link
    assert "Rút phản ánh" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"

    forged = service.client.get(f"{FOLLOW_UP_PATH}/{code}", params={"k": new_token()})
    assert forged.status_code == 404
    assert "/rut" not in forged.text and "Rút phản ánh" not in forged.text
