"""The monitoring API on both backends: scoping (role x endpoint x own/other agency), the report cycle with a
PDF and a link as evidence, a difficulty filed as a routed PAKN case whose answer shows on the report, exports."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.service.conftest import Service
from triage.cases import audit

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
OWN, OTHER = "P-HN", "P-HCM"


def _find(service: Service, indicator: str, agency: str, period: str) -> dict[str, Any]:
    r = service.client.get(
        "/api/v1/kpi/reports",
        params={"indicator": indicator, "agency": agency, "period": period},
        headers=service.headers("admin"),
    )
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    return item  # type: ignore[no-any-return]


def _value(value: float, **extra: Any) -> dict[str, Any]:
    return {
        "value": value,
        "note": "Tiến độ theo kế hoạch",
        "links": [{"name": "Cổng", "url": "https://hanoi.gov.vn/bc"}],
        **extra,
    }


ROLES = ["anonymous", "clerk", "reporter_own", "reporter_other", "coordinator", "leader", "analyst", "admin"]
# endpoint -> roles that get 200 (others: 401 anonymous, 404 reporter of another agency, 403 otherwise)
ALLOWED: dict[str, set[str]] = {
    "read": {"reporter_own", "coordinator", "leader", "analyst", "admin"},
    "values": {"reporter_own", "admin"},
    "verify": {"coordinator", "admin"},
    "dashboard": {"coordinator", "leader", "analyst", "admin"},
}


def _headers(service: Service, role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    if role.startswith("reporter"):
        return service.headers("reporter", OWN if role == "reporter_own" else OTHER)
    return service.headers(role)


@pytest.mark.parametrize("role", ROLES)
def test_scoping_matrix(service: Service, role: str) -> None:
    period = {r: f"2025-Q{1 + i % 4}" for i, r in enumerate(ROLES)}[role]
    indicator = "O_FULL_ONLINE_PROCS" if ROLES.index(role) < 4 else "O_DOSSIERS_TOTAL"
    rid = _find(service, indicator, OWN, period)["id"]
    h = _headers(service, role)

    def expect(endpoint: str, code: int) -> None:
        if role == "anonymous":
            assert code == 401, endpoint
        elif role in ALLOWED[endpoint]:
            assert code == 200, endpoint
        elif role == "reporter_other" and endpoint != "dashboard":
            assert code == 404, endpoint  # another agency's report does not exist for it
        else:
            assert code == 403, endpoint

    expect("read", service.client.get(f"/api/v1/kpi/reports/{rid}", headers=h).status_code)
    expect("values", service.client.post(f"/api/v1/kpi/reports/{rid}/values", json=_value(300), headers=h).status_code)
    if role in ALLOWED["values"]:
        code = service.client.post(f"/api/v1/kpi/reports/{rid}/verify", json={}, headers=h).status_code
    else:  # staged by an admin, so a refusal is about the role, not the state
        service.client.post(f"/api/v1/kpi/reports/{rid}/values", json=_value(300), headers=service.headers("admin"))
        code = service.client.post(f"/api/v1/kpi/reports/{rid}/verify", json={}, headers=h).status_code
    expect("verify", code)
    expect("dashboard", service.client.get("/api/v1/kpi/dashboard", headers=h).status_code)
    if role == "reporter_other":
        listed = service.client.get("/api/v1/kpi/reports", params={"agency": OWN}, headers=h).json()
        assert listed["total"] == 0


def test_report_cycle_with_evidence_and_a_difficulty_that_becomes_a_routed_case(service: Service) -> None:
    rid = _find(service, "O_ONLINE_RATE", OWN, "2025-Q2")["id"]
    rep, coord = service.headers("reporter", OWN), service.headers("coordinator")
    body = _value(
        61.5,
        files=[{"name": "bao-cao-quy-2.pdf", "content_base64": base64.b64encode(PDF).decode()}],
        difficulties=["Đề nghị Bộ Công an hướng dẫn kết nối dữ liệu dân cư để giảm giấy tờ khi nộp hồ sơ trực tuyến."],
    )
    r = service.client.post(f"/api/v1/kpi/reports/{rid}/values", json=body, headers=rep)
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["state"], d["version"], d["value"]) == ("submitted", 1, 61.5)
    assert [e["kind"] for e in d["evidence"]] == ["file", "link"] and d["evidence"][0][
        "media_type"
    ] == "application/pdf"
    [diff] = d["difficulties"]
    assert diff["case_id"] and diff["tracking_code"].startswith("PAKN-")
    case = service.client.get(f"/api/v1/cases/{diff['case_id']}", headers=service.headers("admin")).json()
    assert case["kind"] == "kien_nghi" and case["suggestion"]["agencies"], case  # routed by the real models
    assert service.client.post(f"/api/v1/kpi/reports/{rid}/return", json={}, headers=coord).status_code == 422
    r = service.client.post(
        f"/api/v1/kpi/reports/{rid}/return", json={"reason": "Thiếu số liệu Quận Hoàn Kiếm"}, headers=coord
    )
    assert r.json()["state"] == "returned" and r.json()["returned_reason"] == "Thiếu số liệu Quận Hoàn Kiếm"
    assert service.client.post(f"/api/v1/kpi/reports/{rid}/lock", json={}, headers=coord).status_code == 409
    r = service.client.post(f"/api/v1/kpi/reports/{rid}/values", json=_value(62.0), headers=rep)
    assert (r.json()["state"], r.json()["version"]) == ("submitted", 2)
    assert (
        service.client.post(f"/api/v1/kpi/reports/{rid}/verify", json={}, headers=coord).json()["state"] == "verified"
    )
    assert service.client.post(f"/api/v1/kpi/reports/{rid}/lock", json={}, headers=coord).json()["state"] == "locked"
    assert service.client.post(f"/api/v1/kpi/reports/{rid}/values", json=_value(63.0), headers=rep).status_code == 422
    r = service.client.post(
        f"/api/v1/kpi/reports/{rid}/values", json=_value(63.0, reason="Số liệu chính thức"), headers=rep
    )
    assert [(v["version"], v["value"]) for v in r.json()["versions"]] == [(1, 61.5), (2, 62.0), (3, 63.0)]

    handler = service.handler_name("BCA")
    with service.work() as w:  # the agency answers the case
        w.route(diff["case_id"], agency="BCA")
        w.assign(diff["case_id"], assignee=handler)
        w.start(diff["case_id"])
        w.respond(diff["case_id"], body="Bộ Công an đã ban hành hướng dẫn kết nối dữ liệu dân cư.")
    d = service.client.get(f"/api/v1/kpi/reports/{rid}", headers=rep).json()
    assert d["difficulties"][0]["case_state"] == "responded"
    assert d["difficulties"][0]["answer"] == "Bộ Công an đã ban hành hướng dẫn kết nối dữ liệu dân cư."
    from triage.cases.accounts import issue_token

    service.client.cookies.set(
        "pakn_session", issue_token(service.user("reporter", OWN)[1], service.svc.token_secret, 10)
    )
    try:  # the report page shows the case's state and its answer
        page = service.client.get(f"/staff/kpi/reports/{rid}").text
    finally:
        service.client.cookies.clear()
    assert "Bộ Công an đã ban hành hướng dẫn kết nối dữ liệu dân cư." in page and diff["tracking_code"] in page
    with service.svc.db.read() as s:
        report = audit.verify(s)
        assert report.ok, report.lines()


def test_bad_input_is_a_422_never_a_500(service: Service) -> None:
    rid = _find(service, "O_LAWS_DONE", "BKHCN", "2025-Q3")["id"]
    h = service.headers("reporter", "BKHCN")
    bad = [
        {**_value(0.5)},  # a milestone is 0 or 1
        {**_value(1), "links": [{"url": "javascript:alert(1)"}]},
        {"value": 1, "files": [{"name": "x.exe", "content_base64": base64.b64encode(b"MZ\x90\x00\xff\xfe").decode()}]},
        {"value": 1, "files": [{"name": "x.pdf", "content_base64": "%%%"}]},
        {"value": 1},  # no evidence at all
    ]
    for body in bad:
        r = service.client.post(f"/api/v1/kpi/reports/{rid}/values", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)


def test_dashboard_export_and_openapi(service: Service) -> None:
    h = service.headers("leader")
    d = service.client.get("/api/v1/kpi/dashboard", headers=h).json()
    codes = [i["code"] for i in d["indicators"]]
    assert "S_RD_GDP" in codes and all(
        i["forecast"]["light"] in {"green", "amber", "red", "grey"} for i in d["indicators"]
    )
    assert any(r["agency"] == OWN for r in d["rates"])
    csv = service.client.get("/api/v1/kpi/export", params={"format": "csv", "table": "rates"}, headers=h)
    assert (
        csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf") and "Tỷ lệ đúng hạn".encode() in csv.content
    )
    xlsx = service.client.get("/api/v1/kpi/export", params={"format": "xlsx"}, headers=h)
    assert xlsx.content[:2] == b"PK"
    assert service.client.get("/api/v1/kpi/export", headers=service.headers("reporter", OWN)).status_code == 403
    paths = service.client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/kpi/reports/{report_id}/values", "/api/v1/kpi/dashboard", "/api/v1/kpi/indicators"} <= set(paths)


def test_report_page_is_scoped_and_the_upload_route_needs_a_session_first(service: Service) -> None:
    from triage.cases.accounts import issue_token

    rid = _find(service, "O_SCHOLARS", OWN, "2025-Q1")["id"]
    client = service.client
    who = service.user("reporter", OTHER)[1]
    client.cookies.set("pakn_session", issue_token(who, service.svc.token_secret, 10))
    try:
        assert client.get(f"/staff/kpi/reports/{rid}").status_code == 404  # another agency's report
        own = service.user("reporter", OWN)[1]
        client.cookies.set("pakn_session", issue_token(own, service.svc.token_secret, 10))
        page = client.get(f"/staff/kpi/reports/{rid}")
        assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    finally:
        client.cookies.clear()
    # Without a session the form is never read: a sign-in answer, whatever the body holds.
    r = client.post(
        f"/staff/kpi/reports/{rid}/values",
        content=b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n' + PDF * 10,
        headers={"content-type": "multipart/form-data; boundary=x"},
        follow_redirects=False,
    )
    assert r.status_code in (303, 401), r.status_code
