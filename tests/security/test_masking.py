"""Masking for analysts (issue 20, item 4): they search what they are shown, never see tracking codes
or contact data, and read names, street addresses and the clerk's moderation note masked."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.security.conftest import PASSWORD, bearer, svc_of, unique
from triage.cases.accounts import create_user
from triage.cases.intake import NewSubmission, receive
from triage.nlp.text import mask_personal
from triage.store.repositories import Cases, fill_masked_search
from triage.store.tables import Submission

PHONE = "0912 345 678"
NAME = "Nguyễn Văn Bình"
STREET = "số nhà 45/7 đường Nguyễn Trãi"


def _case(app: TestClient, marker: str) -> tuple[int, str]:
    """A case whose text holds a phone number, a name and a street address; its id and tracking code."""
    svc = svc_of(app)
    content = (
        f"Tôi là {NAME}, nhà ở {STREET}, phường Bến Thành. Hồ sơ {marker} nộp từ tháng 3 chưa được giải quyết, "
        f"xin gọi lại số {PHONE}."
    )
    receipt = receive(
        svc.db,
        NewSubmission(
            kind="phan_anh",
            submitter_type="citizen",
            title=f"Hồ sơ đất đai {marker} chậm",
            content=content,
            contact_name=NAME,
            contact_phone=PHONE,
            contact_address=STREET,
        ),
        policy=svc.policy,
    )
    return receipt.case_id, receipt.tracking_code


def _ids(app: TestClient, headers: dict[str, str], q: str) -> list[int]:
    r = app.get("/api/v1/cases", params={"q": q, "limit": 200}, headers=headers)
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["items"]]


def test_analyst_search_runs_on_masked_text(app: TestClient) -> None:
    marker = unique("mã") + "x"
    case_id, _ = _case(app, marker)
    analyst, admin = bearer(app, "analyst"), bearer(app, "admin")
    assert case_id in _ids(app, analyst, marker)  # the search works for analysts
    # Prefix by prefix, the masked phone number cannot be recovered; nor a masked name or street.
    for q in ("số 09", "số 0912", PHONE, "0912 345", NAME, "Văn Bình", "45/7", "Nguyễn Trãi"):
        assert case_id in _ids(app, admin, q), q  # the text holds it: the admin finds it
        assert case_id not in _ids(app, analyst, q), q
    assert case_id in _ids(app, analyst, f"{marker} nộp")
    assert case_id in _ids(app, analyst, "số [sđt]")  # what the analyst is shown, it can search


def test_rows_stored_before_masked_search_become_searchable_once_masked(app: TestClient) -> None:
    marker = unique("mã") + "b"
    case_id, _ = _case(app, marker)
    with svc_of(app).db.session() as s:  # as a row migrated from before masked search existed
        s.execute(update(Submission).where(Submission.case_id == case_id).values(masked_search_text=None))
    analyst = bearer(app, "analyst")
    assert case_id not in _ids(app, analyst, marker)  # never the raw text in its place
    assert fill_masked_search(svc_of(app).db) >= 1  # what the periodic job runs
    assert case_id in _ids(app, analyst, marker) and case_id not in _ids(app, analyst, "0912")


def test_analyst_sees_no_tracking_code_contact_name_or_street(app: TestClient) -> None:
    case_id, code = _case(app, unique("mã") + "y")
    analyst = bearer(app, "analyst")
    body = app.get(f"/api/v1/cases/{case_id}", headers=analyst).json()
    text = json.dumps(body, ensure_ascii=False)
    for secret in (code, PHONE, NAME, "45/7", "Nguyễn Trãi"):
        assert secret not in text, secret
    [sub] = body["submissions"]
    assert sub["tracking_code"] is None and sub["contact"] is None
    assert "[HỌ TÊN]" in sub["content"] and "[ĐỊA CHỈ]" in sub["content"] and "[SĐT]" in sub["content"]
    assert "phường Bến Thành" in sub["content"]  # the ward stays: statistics by place need it
    # The admin still reads everything, the tracking code among it.
    admin_view = app.get(f"/api/v1/cases/{case_id}", headers=bearer(app, "admin")).json()
    assert admin_view["submissions"][0]["tracking_code"] == code and NAME in admin_view["submissions"][0]["content"]

    listed = app.get("/api/v1/cases", params={"limit": 200}, headers=analyst).json()
    assert code not in json.dumps(listed, ensure_ascii=False)


def test_analyst_case_page_shows_neither_code_nor_name(app: TestClient) -> None:
    case_id, code = _case(app, unique("mã") + "z")
    name = unique("analyst-")
    with svc_of(app).db.session() as s:
        create_user(s, username=name, password=PASSWORD, role="analyst")
    browser = TestClient(app.app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
    assert token
    form = {"csrf_token": token.group(1), "username": name, "password": PASSWORD}
    assert browser.post("/login", data=form, follow_redirects=False).status_code == 303
    page = browser.get(f"/staff/cases/{case_id}")
    assert page.status_code == 200
    for secret in (code, NAME, PHONE, "45/7"):
        assert secret not in page.text, secret


def test_moderation_note_is_masked_for_analysts(app: TestClient) -> None:
    case_id, _ = _case(app, unique("mã") + "m")
    with svc_of(app).db.session() as s:
        case = Cases(s).get(case_id)
        assert case is not None
        case.suggestion = {"agencies": [], "moderation": {"flagged": False, "reasons": []}}
    note = f"Người gửi {NAME} (ĐT {PHONE}) lăng mạ cán bộ tiếp dân."
    r = app.post(
        f"/api/v1/cases/{case_id}/moderation",
        json={"decision": "confirm", "note": note},
        headers=bearer(app, "clerk"),
    )
    assert r.status_code == 200, r.text
    body = app.get(f"/api/v1/cases/{case_id}", headers=bearer(app, "analyst")).json()
    text = json.dumps(body, ensure_ascii=False)
    assert NAME not in text and PHONE not in text
    shown = body["suggestion"]["moderation"]["note"]
    assert "lăng mạ cán bộ" in shown and "[HỌ TÊN]" in shown and "[SĐT]" in shown


def test_mask_personal_names_and_street_addresses() -> None:
    text = "Gửi anh Lê Văn Tám ở ngõ 15 phố Huế, quận Hai Bà Trưng. Chị Hoa gọi 0912 345 678."
    masked = mask_personal(text)
    assert masked == "Gửi anh [HỌ TÊN] ở [ĐỊA CHỈ], quận Hai Bà Trưng. Chị [HỌ TÊN] gọi [SĐT]."
    # Legal references, cities and agencies are not personal data.
    plain = "Theo Nghị định số 15/2020/NĐ-CP, Bộ Tài chính và TP Hồ Chí Minh cần cải cách thủ tục."
    assert mask_personal(plain) == plain
