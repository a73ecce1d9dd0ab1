"""The service on each database backend, built once per test session, plus helpers to stage cases.

The session's app is shut down after the last test that uses it, not at the end of the session: it
holds ~1.5 GB (encoder, routers, index, database pools) that the later test directories do not need.

Cases are staged through the real core (``triage.cases.intake.receive`` and ``Casework`` as an admin),
which is fast and exercises the same code paths; the behaviour under test then goes through HTTP.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.state import ServiceState
from tests.db import BACKENDS, FreshDatabases
from triage.cases.accounts import Principal, Role, create_user, principal_of
from triage.cases.casework import Casework
from triage.cases.intake import NewSubmission, receive
from triage.cases.workflow import CaseState
from triage.config import Settings

PASSWORD = "mật-khẩu-đủ-dài-123"
_ids = itertools.count(1)

BODY: dict[str, Any] = {
    "kind": "phan_anh",
    "submitter_type": "citizen",
    "title": "Hoàn thuế thu nhập cá nhân chậm",
    "content": "Tôi nộp hồ sơ hoàn thuế thu nhập cá nhân từ tháng 3 nhưng chưa được giải quyết.",
    "contact": {"name": "Nguyễn Văn An", "phone": "0912 345 678", "email": "an.nguyen@example.vn"},
}


def unique(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


@dataclass
class Service:
    """One running app (TestClient) on one backend, and shortcuts for tests."""

    backend: str
    client: TestClient
    svc: ServiceState
    _tokens: dict[tuple[str, str | None], tuple[str, Principal]] = field(default_factory=dict)
    _admin_id: int | None = None

    # ---- accounts ----
    def user(self, role: str, agency: str | None = None) -> tuple[str, Principal]:
        """A fresh account and a token for it (cached per role and agency)."""
        key = (role, agency)
        if key not in self._tokens:
            name = unique(f"{role}-")
            with self.svc.db.session() as s:
                who = principal_of(create_user(s, username=name, password=PASSWORD, role=role, agency_code=agency))
            r = self.client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self._tokens[key] = (r.json()["access_token"], who)
        return self._tokens[key]

    def headers(self, role: str | None, agency: str | None = None) -> dict[str, str]:
        if role is None:
            return {}
        return {"Authorization": f"Bearer {self.user(role, agency)[0]}"}

    def handler_name(self, agency: str) -> str:
        return self.user("handler", agency)[1].username

    # ---- cases ----
    def submit(self, **overrides: Any) -> int:
        """A new case through the core intake (models skipped: fast); returns its id.

        ``contact`` replaces the default one (name, phone, e-mail); ``publish_consent`` and ``now`` pass through.
        """
        data = {**BODY, **overrides}
        contact = data.pop("contact", None) or {}
        receipt = receive(
            self.svc.db,
            NewSubmission(
                kind=data["kind"],
                submitter_type=data["submitter_type"],
                title=data["title"],
                content=data["content"],
                province=data.get("province"),
                contact_name=contact.get("name"),
                contact_phone=contact.get("phone"),
                contact_email=contact.get("email"),
                publish_consent=bool(data.get("publish_consent", False)),
            ),
            policy=self.svc.policy,
            now=data.get("now"),
        )
        return receipt.case_id

    def admin_id(self) -> int:
        """A real admin row for staged actions (reviewed labels and responses need an author)."""
        if self._admin_id is None:
            with self.svc.db.session() as s:
                self._admin_id = create_user(s, username=unique("stager-"), password=PASSWORD, role="admin").id
        return self._admin_id

    @contextmanager
    def work(self, now: datetime | None = None) -> Iterator[Casework]:
        """An admin's ``Casework`` in one committed transaction (open no other write session inside it)."""
        admin = Principal(user_id=self.admin_id(), username="stager", role=Role.ADMIN)
        with self.svc.db.session() as s:
            yield Casework(s, admin, policy=self.svc.policy, calendar=self.svc.calendar, now=now)

    def case_in(self, state: CaseState | str, agency: str = "BTC", **submit: Any) -> int:
        """A case driven to ``state`` along the normal path; ends with ``agency`` responsible (except NEW)."""
        state = CaseState(state)
        cid = self.submit(**submit)
        if state is CaseState.NEW:
            return cid
        other = "BYT" if agency != "BYT" else "BGDDT"
        handler = self.handler_name(agency)
        duplicate_target = self.submit() if state is CaseState.DUPLICATE else 0
        with self.work() as w:
            if state is CaseState.TRANSFERRED:
                w.route(cid, agency=other)
                w.transfer(cid, agency=agency, reason="đúng thẩm quyền")
                return cid
            w.route(cid, agency=agency)
            if state is CaseState.RETURNED:
                w.return_for_info(cid, reason="thiếu số hồ sơ")
            elif state is CaseState.REJECTED:
                w.reject(cid, reason="nội dung không thuộc phạm vi")
            elif state is CaseState.DUPLICATE:
                w.mark_duplicate(cid, target=duplicate_target)
            elif state is not CaseState.TRIAGED:
                w.assign(cid, assignee=handler)
                if state is not CaseState.ASSIGNED:
                    w.start(cid)
                    if state in (CaseState.RESPONDED, CaseState.CLOSED):
                        w.respond(cid, body="Cơ quan đã trả lời.")
                        if state is CaseState.CLOSED:
                            w.close(cid)
        return cid

    def release(self) -> None:
        """Let go of the app and its state (after the app's shutdown): a later use fails loudly."""
        del self.client, self.svc
        self._tokens.clear()

    def state_of(self, case_id: int) -> str:
        r = self.client.get(f"/api/v1/cases/{case_id}", headers=self.headers("admin"))
        assert r.status_code == 200, r.text
        return str(r.json()["state"])


@pytest.fixture(scope="session", params=BACKENDS)
def service(
    request: pytest.FixtureRequest,
    encoder_path: Path,
    fresh_databases: FreshDatabases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    """The app on one backend for the whole session (models load once per backend)."""
    url = fresh_databases.new(str(request.param))
    settings = Settings(
        encoder_path=encoder_path,
        database_url=url,
        data_dir=tmp_path_factory.mktemp("service-data"),  # its own (empty) MLflow store: cold start
        model_poll_s=0,
        escalate_interval_s=0,
        intake_rate_per_minute=100_000,
        intake_burst=100_000,
        text_rate_per_minute=100_000,
        text_burst=100_000,
    )
    stack = ExitStack()
    client = stack.enter_context(TestClient(create_app(settings)))
    _RUNNING.append((Service(backend=str(request.param), client=client, svc=client.app.state.svc), stack))  # type: ignore[attr-defined]
    del client
    try:
        yield _RUNNING[-1][0]
    finally:
        _shut_down()


_RUNNING: list[tuple[Service, ExitStack]] = []
_LAST_USER: list[Path] = []  # the test module whose end is the end of the session's service


def _shut_down() -> None:
    """Stop the running session app (its lifespan drops the models and disposes the database) and
    drop every reference the tests hold to it."""
    while _RUNNING:
        running, stack = _RUNNING.pop()
        stack.close()
        running.release()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """After ordering and deselection: remember the last module that uses ``service``."""
    users = [item.path for item in items if "service" in getattr(item, "fixturenames", ())]
    _LAST_USER[:] = users[-1:]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Once that module's fixtures are torn down (they may still use the app), shut the app down."""
    if _LAST_USER and item.path == _LAST_USER[0] and (nextitem is None or nextitem.path != item.path):
        _shut_down()


def zalo_labels(shared_data: Path, agencies: int = 3, per_agency: int = 12) -> list[tuple[str, str]]:
    """Real Zalo legal questions of the most frequent issuing agencies (text, agency code): tiny, fast to train."""
    from collections import Counter

    from tests.conftest import read_rows
    from triage.nlp.agencies import default_registry

    reg = default_registry()
    rows = [
        (r["text"], reg.resolve(r["agency"]).code) for r in read_rows(shared_data / "zalo_legal/agency_train.jsonl")
    ]
    top = {c for c, _ in Counter(c for _, c in rows).most_common(agencies)}
    per: Counter[str] = Counter()
    picked = []
    for text, code in rows:
        if code in top and per[code] < per_agency:
            per[code] += 1
            picked.append((text, code))
    return picked


def stage_versions(svc: ServiceState, shared_data: Path, *, labels: bool = True, copies: int = 1) -> None:
    """Registered versions for promote / rollback tests: one real retrain (reviewed labels, frozen slice,
    MLflow run, gate) gives v1, the champion, which the service then serves; ``copies`` more versions
    register the same bundle again without promoting it (v2, ...: same model, their own version number,
    which is what the served model version names). Training once keeps these tests to seconds."""
    from tests.training.conftest import add_labels
    from training.dataset import grow_eval_slice
    from training.registry import ModelRegistry
    from training.retrain import retrain

    if labels:
        add_labels(svc.db, zalo_labels(shared_data))
        with svc.db.session() as s:
            grow_eval_slice(s, fraction=0.25, actor="test")
    reg = ModelRegistry(svc.settings)
    first = retrain(
        svc.settings,
        svc.db,
        embedder=svc.pipeline.embedder,
        created_by="test",
        cold_start=getattr(svc.pipeline.agency_router, "cold_", None),
        registry=reg,
    )
    assert first.promoted and first.version is not None
    info = reg.version(first.version)
    for _ in range(copies):
        tags = {**info.tags, "created_by": "test-copy", "gate": "refused", "reasons": f"copy of v{info.version}"}
        reg.register(source=info.source, run_id=str(info.run_id), tags=tags)
    assert svc.models is not None
    svc.models.refresh()


@contextmanager
def staged_client(
    *, encoder_path: Path, database_url: str, data_dir: Path, registry_model: str, shared_data: Path, **overrides: Any
) -> Iterator[TestClient]:
    """A running service whose registry holds v1 (the champion, trained here) and v2 (never promoted)."""
    settings = Settings(
        encoder_path=encoder_path,
        database_url=database_url,
        data_dir=data_dir,
        registry_model=registry_model,
        escalate_interval_s=0,
        model_poll_s=0,
        **overrides,
    )
    with TestClient(create_app(settings)) as client:
        stage_versions(client.app.state.svc, shared_data)  # type: ignore[attr-defined]
        yield client


__all__ = ["BODY", "PASSWORD", "Service", "stage_versions", "staged_client", "unique", "zalo_labels"]
