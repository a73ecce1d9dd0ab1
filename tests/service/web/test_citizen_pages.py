"""The citizen channel's pages without a browser: the form with files and place, refusals that keep the
form, the follow-up page and its CSRF, and the staff case page (files for staff, not for analysts)."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image

from tests.service.conftest import Service
from tests.service.web.test_pages import browser, csrf, valid_form
from tests.triage.store.test_files import GPS_IFD, jpeg_with_gps
from triage.store.files import FileStore
from triage.store.repositories import Submissions


def _file_submit(client: TestClient, files: list[tuple[str, bytes, str]], **over: str):  # type: ignore[no-untyped-def]
    form = valid_form(csrf(client, "/"), form_id="", **over)
    return client.post("/", data=form, files=[("files", f) for f in files], follow_redirects=False)


def test_the_form_takes_a_photo_and_place_and_strips_gps(service: Service) -> None:
    client = TestClient(service.client.app)
    r = _file_submit(client, [("anh.jpg", jpeg_with_gps(), "image/jpeg")], ward="hoàn kiếm", address="1 Tràng Tiền",
                     latitude="21,0245", longitude="105.8572")  # fmt: skip
    assert r.status_code == 303, r.text[:500]
    code = r.headers["location"].split("/receipt/")[1].split("?")[0]
    with service.svc.db.read() as s:
        sub = Submissions(s).by_tracking_code(code)
        assert sub is not None
        assert (sub.ward, sub.latitude, sub.longitude) == ("Phường Hoàn Kiếm", 21.0245, 105.8572)
        from triage.store.citizen_tables import Attachment

        (att,) = s.query(Attachment).filter(Attachment.case_id == sub.case_id).all()
    stored = FileStore(service.svc.settings.data_dir / "files").read(att.sha256)
    with Image.open(io.BytesIO(stored)) as im:
        assert not im.getexif().get_ifd(GPS_IFD)
    page = client.get(r.headers["location"])
    assert "1 tệp" in page.text and "/theo-doi/" in page.text


def test_a_refused_file_keeps_the_rest_of_the_form(service: Service) -> None:
    client = TestClient(service.client.app)
    r = _file_submit(client, [("hop-dong.docx", b"MZ not a document", "application/msword")], address="5 Hàng Bài")
    assert r.status_code == 422
    assert "hop-dong.docx" in r.text and "chọn lại" in r.text
    assert 'value="Thủ tục cấp phép xây dựng kéo dài"' in r.text and 'value="5 Hàng Bài"' in r.text
    bad = _file_submit(client, [], latitude="95", longitude="105")
    assert bad.status_code == 422 and "Vĩ độ phải nằm trong khoảng" in bad.text


def test_follow_up_page_needs_the_secret_and_its_posts_need_csrf(service: Service) -> None:
    client = TestClient(service.client.app)
    r = client.post("/", data=valid_form(csrf(client, "/"), form_id=""), follow_redirects=False)
    receipt = client.get(r.headers["location"])
    link = receipt.text.split('id="follow-up-link" href="')[1].split('"')[0].replace("&amp;", "&")
    code, secret = link.split("/theo-doi/")[1].split("?k=")
    assert client.get(f"/theo-doi/{code}?k=wrong").status_code == 404
    page = client.get(link)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Rút phản ánh" in page.text and "Bổ sung thông tin" not in page.text
    forged = client.post(f"/theo-doi/{code}/rut", data={"k": secret, "confirm": "yes", "csrf_token": "x"})
    assert forged.status_code == 403
    unconfirmed = client.post(f"/theo-doi/{code}/rut", data={"k": secret, "csrf_token": csrf(client, link)})
    assert unconfirmed.status_code == 422 and "xác nhận" in unconfirmed.text
    done = client.post(f"/theo-doi/{code}/rut", data={"k": secret, "confirm": "yes", "reason": "Đã xong",
                                                       "csrf_token": csrf(client, link)})  # fmt: skip
    assert done.status_code == 200 and "Đã rút phản ánh" in done.text and "Đã kết thúc" in done.text


def test_staff_case_page_files_for_clerks_not_analysts(service: Service) -> None:
    client = TestClient(service.client.app)
    r = _file_submit(client, [("don.pdf", b"%PDF-1.4\nx\n%%EOF", "application/pdf")])
    code = r.headers["location"].split("/receipt/")[1].split("?")[0]
    with service.svc.db.read() as s:
        sub = Submissions(s).by_tracking_code(code)
        assert sub is not None
        case_id = sub.case_id
    clerk = browser(service, "clerk")
    page = clerk.get(f"/staff/cases/{case_id}")
    assert 'class="attachment-link"' in page.text
    url = page.text.split('class="attachment-link"')[0].rsplit('href="', 1)[1].split('"')[0]
    got = clerk.get(url)
    assert got.status_code == 200 and got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"
    analyst = browser(service, "analyst")
    page = analyst.get(f"/staff/cases/{case_id}")
    assert page.status_code == 200 and "attachment-link" not in page.text and 'id="files-masked"' in page.text
    assert analyst.get(url).status_code == 403
    anonymous = TestClient(service.client.app)
    assert anonymous.get(url, follow_redirects=False).status_code == 303  # to the login page, never the file
