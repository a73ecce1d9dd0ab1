"""Every staff action form under odd input, on SQLite and PostgreSQL: a 4xx with a reason, never a 5xx.

A form is checked by the API's model for the same action (``casepage.FORM_MODELS``); before that,
"²" passed ``str.isdigit`` and then failed ``int()``, an id past 32 bits reached PostgreSQL and a NUL
reached the database, each a 500.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.web.casepage import ACTIONS
from tests.service.conftest import Service
from tests.service.web.test_pages import browser, csrf
from triage.cases.workflow import CaseState

ODD = ["\x00", "a\x00b", "²", "٣", "１２", "9" * 40, "-1", "0", "x" * 25_000, " ", "<script>", "BTC\x00"]
FORMS = sorted(a for a, spec in ACTIONS.items() if spec.fields)


@pytest.mark.parametrize("value", ["\x00", "²", "9" * 40, "a" * 3000])
def test_an_odd_target_or_note_is_a_422_that_says_why(service: Service, value: str) -> None:
    case_id = service.case_in(CaseState.TRIAGED, agency="BTC")
    client = browser(service, "admin")
    token = csrf(client, f"/staff/cases/{case_id}")
    r = client.post(f"/staff/cases/{case_id}/act/mark_duplicate", data={"csrf_token": token, "target": value})
    assert r.status_code == 422 and "số hồ sơ" in r.text
    assert "\x00" not in r.text
    r = client.post(f"/staff/cases/{case_id}/act/close", data={"csrf_token": token, "note": value * 2})
    if "\x00" in value or len(value) > 1000:  # else a valid note: the workflow's own 409 (not closable yet)
        assert r.status_code == 422 and "Ghi chú" in r.text
    else:
        assert r.status_code == 409
    assert service.state_of(case_id) == CaseState.TRIAGED


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action=st.sampled_from(FORMS),
    values=st.dictionaries(
        st.sampled_from(["agency", "field", "kind", "note", "programme_field", "assignee", "reason", "body", "target"]),
        st.sampled_from(ODD) | st.text(max_size=30),
        max_size=4,
    ),
)
def test_no_staff_form_answers_5xx(service: Service, action: str, values: dict[str, str]) -> None:
    client: TestClient = _admin(service)
    case_id = _case(service)
    r = client.post(f"/staff/cases/{case_id}/act/{action}", data={"csrf_token": _token(service), **values})
    assert r.status_code < 500, (action, values, r.text[:300])


_clients: dict[str, tuple[TestClient, str, int]] = {}


def _session(service: Service) -> tuple[TestClient, str, int]:
    # One signed-in admin and one case per backend: hypothesis calls the test many times per fixture.
    if service.backend not in _clients:
        client = browser(service, "admin")
        case_id = service.case_in(CaseState.IN_PROGRESS, agency="BTC")
        _clients[service.backend] = (client, csrf(client, f"/staff/cases/{case_id}"), case_id)
    return _clients[service.backend]


def _admin(service: Service) -> TestClient:
    return _session(service)[0]


def _token(service: Service) -> str:
    return _session(service)[1]


def _case(service: Service) -> int:
    return _session(service)[2]
