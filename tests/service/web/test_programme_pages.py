"""Programme fields (Resolution-57 task groups) on the staff pages: inbox badge and filter, case page, reports."""

from __future__ import annotations

import re

from tests.service.conftest import BODY, Service, unique
from tests.service.web.test_pages import browser
from triage.store.tables import Case


def set_field(service: Service, case_id: int, code: str) -> None:
    with service.svc.db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.programme_field = code


def test_inbox_shows_and_filters_by_programme_field(service: Service) -> None:
    abroad, rules = service.submit(title=unique("hợp tác ")), service.submit(title=unique("thể chế "))
    set_field(service, abroad, "international")
    set_field(service, rules, "institutions")
    client = browser(service, "clerk")
    page = client.get("/staff/inbox")
    assert page.status_code == 200
    assert 'name="programme_field"' in page.text and '<option value="digital_government">' in page.text
    card = page.text[page.text.index(f'data-case="{abroad}"') :]
    assert re.search(r'data-programme-field="international"[^>]*>Hợp tác quốc tế</span>', card[:3000])
    only = client.get("/staff/inbox", params={"programme_field": "international"})
    assert only.status_code == 200
    assert f'data-case="{abroad}"' in only.text and f'data-case="{rules}"' not in only.text
    assert '<option value="international" selected>' in only.text
    bad = client.get("/staff/inbox", params={"programme_field": "không-có"})
    assert bad.status_code == 422 and "Nhóm nhiệm vụ không có trong danh mục" in bad.text
    assert "digital_government" in bad.text


def test_case_page_shows_the_suggested_programme_fields(service: Service) -> None:
    tag = unique("VNeID-trang-")
    body = {**BODY, "title": tag, "content": "Ứng dụng VNeID không đăng nhập được, dịch vụ công trực tuyến báo lỗi."}
    assert service.client.post("/api/v1/submissions", json=body).status_code == 201
    [item] = service.client.get("/api/v1/cases", params={"q": tag}, headers=service.headers("clerk")).json()["items"]
    page = browser(service, "clerk").get(f"/staff/cases/{item['id']}")
    assert page.status_code == 200 and "<h3>Nhóm nhiệm vụ</h3>" in page.text
    assert '<li data-programme-field="digital_government">Chuyển đổi số trong cơ quan nhà nước' in page.text


def test_reports_count_by_programme_field_and_explain_a_bad_filter(service: Service) -> None:
    client = browser(service, "analyst")
    r = client.get("/staff/reports")
    assert r.status_code == 200 and 'id="programme-table"' in r.text
    table = r.text[r.text.index('id="programme-table"') :]
    for code in ("institutions", "digital_government", "other"):
        assert f'data-programme-field="{code}"' in table
    only = client.get("/staff/reports", params={"programme_field": "human_resources"})
    assert only.status_code == 200 and '<option value="human_resources" selected>' in only.text
    rows = re.findall(r'<tr data-programme-field="([^"]*)"', only.text)
    assert rows == ["human_resources"]
    bad = client.get("/staff/reports", params={"programme_field": "vũ-trụ"})
    assert bad.status_code == 422 and "Nhóm nhiệm vụ không có trong danh mục" in bad.text


def test_the_case_page_route_form_sets_the_programme_field(service: Service) -> None:
    from tests.service.web.test_pages import csrf

    cid = service.submit(title=unique("chỉnh nhóm "))
    set_field(service, cid, "other")
    client = browser(service, "clerk")
    page = client.get(f"/staff/cases/{cid}")
    form = page.text[page.text.index('id="form-triage"') :]
    form = form[: form.index("</form>")]
    assert 'name="programme_field"' in form and '<option value="other" selected>Khác</option>' in form
    token = csrf(client, f"/staff/cases/{cid}")
    data = {"csrf_token": token, "agency": "BKHCN", "programme_field": "enterprise_innovation"}
    r = client.post(f"/staff/cases/{cid}/act/triage", data=data, follow_redirects=False)
    assert r.status_code == 303
    with service.svc.db.read() as s:
        case = s.get(Case, cid)
        assert case is not None and case.programme_field == "enterprise_innovation" and case.agency_code == "BKHCN"
    r = client.post(f"/staff/cases/{cid}/act/triage", data={**data, "programme_field": "vũ-trụ"})
    assert r.status_code == 422 and "Dữ liệu chưa hợp lệ" in r.text and "unknown code" in r.text
