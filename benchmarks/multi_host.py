"""Three hosts, one database: three `triage serve` processes, each with its own data folder, on one PostgreSQL.

What three hosts share is what a deployment shares: the database (a fresh schema per run on the local
PostgreSQL), the audit key and the token secret (set in the environment), and the MLflow registry
(one sqlite store here, an MLflow server in production). Each host has its own data folder (its
case index, anchor file, logs). Before the hosts start, 600 public-service questions (``dvc_faq``,
with their ministries) are imported with ``triage.cases.importer``, so a retrain has reviewed labels.

Measured, in this order:

1. **Similar across hosts**: a case filed on A, then the same matter filed on B: is A's case among
   the similar cases B stored with its suggestion, and how long after A's acknowledgement.
2. **Intake round-robin** A, B, C at a target rate for ``seconds`` (open loop, as
   ``benchmarks.load``): errors, achieved rate, latency; then every acknowledged tracking code is
   read back from a host other than the one that took it (lost = acknowledged but not found).
3. **A retrain started on A runs once**: a second request on C while it is queued or running gets
   409; B reports its stage and progress while it runs; exactly one job row, one runner.
4. **A promotion on B is served by A and C**: 60 more reviewed labels are imported and a second
   retrain (requested on C) registers a second version, other weights. Once every host serves the
   champion (the first version, or the second when its gate promoted it), B promotes the other
   registered version by hand, and the delay until A and C each serve it is measured
   (``model_poll_s`` is the bound). Before and after, every host is asked what it serves twice: the
   registry version ``GET /api/v1/models`` reports, and the model version (registry version and
   router data hash) a ``POST /api/v1/route`` answer carries; ``meets`` requires both to change on
   A and C.

The machine's cores are shared by the three hosts and the load generator; per-core throughput is the
achieved rate divided by the cores the run had.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import _cpus, data_dir
from benchmarks.load.run import payload
from benchmarks.load.server import Server

Say = Callable[[str], None]
PG_DSN = os.environ.get("TRIAGE_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=5")
ADMIN, PASSWORD = "quantri", "mat-khau-quan-tri-dai"
MODEL_POLL_S = 5.0
REGISTRY_MODEL = "pakn-agency-router"


def _pg_schema() -> tuple[str, str]:
    """A fresh schema on the local PostgreSQL and the URL that uses it."""
    import psycopg

    schema = f"multi_host_{secrets.token_hex(4)}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    p = dict(item.split("=", 1) for item in PG_DSN.split())
    where = f"{p.get('user', 'postgres')}@{p.get('host', '127.0.0.1')}:{p.get('port', '5432')}/{p['dbname']}"
    return schema, f"postgresql+psycopg://{where}?options=-csearch_path%3D{schema}"


def _drop(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _import(db: Any, embedder: Any, start: int, n: int) -> int:
    """Import FAQ lines ``start``..``start + n`` as closed past cases with their ministry (reviewed labels)."""
    from triage.cases.import_files import Mapping, RawRow
    from triage.cases.importer import import_rows, validate

    lines = (data_dir() / "dvc_faq" / "train.jsonl").read_text(encoding="utf-8").splitlines()[start : start + n]
    raw = []
    for i, line in enumerate(lines, start=2):
        r = json.loads(line)
        day = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"
        cells = {"external_id": f"FAQ-{r['id']}", "received_at": day, "answered_at": day, "state": "closed",
                 "kind": "kien_nghi", "text": r["text"], "agency": r["agency"]}  # fmt: skip
        raw.append(RawRow(line=i, cells=cells, headers={}))
    rows, errors, _ = validate(raw, Mapping())
    assert not errors, errors[:3]
    return import_rows(db, rows, embedder=embedder, reviewer=ADMIN).labels


def _seed(url: str, embedder: Any, n: int = 600) -> int:
    """The admin account and ``n`` imported past cases (reviewed labels for the retrain)."""
    from training.dataset import grow_eval_slice
    from triage.cases.accounts import create_user
    from triage.store.db import Database, init_db

    db = Database(url)
    init_db(db)
    with db.session() as s:
        create_user(s, username=ADMIN, password=PASSWORD, role="admin")
    labels = _import(db, embedder, 0, n)
    with db.session() as s:  # a retrain compares models only on a frozen slice
        grow_eval_slice(s, fraction=0.2, actor=ADMIN)
    db.dispose()
    return labels


def _more_labels(url: str, embedder: Any, start: int, n: int) -> int:
    """``n`` more reviewed labels after the first retrain (outside the frozen slice: training data only)."""
    from triage.store.db import Database

    db = Database(url)
    try:
        return _import(db, embedder, start, n)
    finally:
        db.dispose()


async def _intake(urls: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Round-robin open-loop intake; then each receipt read back from another host."""
    import random

    rng = random.Random(0)
    n = int(rate * seconds)
    results: list[tuple[int, float, str | None, int]] = []
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=60)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:

        async def one(i: int, body: dict[str, Any]) -> None:
            host = i % len(urls)
            t = time.perf_counter()
            try:
                r = await client.post(
                    f"{urls[host]}/api/v1/submissions", json=body, headers={"Idempotency-Key": f"mh-{i}"}
                )
                code = r.json().get("tracking_code") if r.status_code == 201 else None
                results.append((r.status_code, time.perf_counter() - t, code, host))
            except httpx.HTTPError:
                results.append((0, time.perf_counter() - t, None, host))

        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, payload(i, rng))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        stored = 0
        for status, _, code, host in results:
            if status == 201 and code:
                other = urls[(host + 1) % len(urls)]
                stored += (await client.get(f"{other}/api/v1/track/{code}")).status_code == 200
    lat = sorted(x[1] * 1000 for x in results if x[0] == 201)
    ok = sum(1 for x in results if x[0] == 201)
    return {
        "target_rate": rate,
        "seconds": seconds,
        "sent": n,
        "acknowledged_201": ok,
        "errors": n - ok,
        "error_codes": sorted({x[0] for x in results if x[0] != 201}),
        "lost": ok - stored,
        "achieved_rate": round(n / elapsed, 2),
        "acknowledged_rate": round(ok / elapsed, 2),
        "latency_ms": {
            "p50": round(statistics.median(lat), 1) if lat else None,
            "p95": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
            "p99": round(lat[int(0.99 * (len(lat) - 1))], 1) if lat else None,
            "max": round(lat[-1], 1) if lat else None,
        },
    }


def _case_of(url: str, code: str) -> tuple[int, dict[str, Any] | None]:
    from sqlalchemy import select

    from triage.store.db import Database
    from triage.store.tables import Case, Submission

    db = Database(url)
    try:
        with db.read() as s:
            row = s.execute(
                select(Case.id, Case.suggestion).join(Submission, Submission.case_id == Case.id)
                .where(Submission.tracking_code == code)
            ).one()  # fmt: skip
            return int(row.id), row.suggestion
    finally:
        db.dispose()


def _similar_across(hosts: list[Server], url: str) -> dict[str, Any]:
    a, b = hosts[0], hosts[1]
    body = {"kind": "phan_anh", "submitter_type": "citizen", "title": "Cầu Rạch Miễu 3 chậm tiến độ",
            "content": "Dự án cầu Rạch Miễu 3 nối Tiền Giang và Bến Tre chậm tiến độ hai năm, người dân đề nghị "
                       "công khai lý do và thời hạn hoàn thành."}  # fmt: skip
    first = httpx.post(f"{a.url}/api/v1/submissions", json=body, timeout=60)
    acked = time.perf_counter()
    assert first.status_code == 201, first.text
    again = {**body, "title": "Hỏi về tiến độ cầu Rạch Miễu 3"}
    second = httpx.post(f"{b.url}/api/v1/submissions", json=again, timeout=60)
    delay = time.perf_counter() - acked
    assert second.status_code == 201, second.text
    case_a, _ = _case_of(url, first.json()["tracking_code"])
    _, suggestion = _case_of(url, second.json()["tracking_code"])
    similar = [int(c["case_id"]) for c in (suggestion or {}).get("similar", [])]
    return {
        "case_on_a": case_a,
        "similar_on_b": similar,
        "found": case_a in similar,
        "seconds_after_a_ack": round(delay, 3),
        "how": "B's case index follows the audit trail on every search (refresh before search)",
    }


def _token(host: Server) -> dict[str, str]:
    r = httpx.post(f"{host.url}/api/v1/auth/token", data={"username": ADMIN, "password": PASSWORD}, timeout=60)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _retrain_once(hosts: list[Server], url: str, timeout: float) -> dict[str, Any]:
    a, b, c = hosts
    auth = {h.url: _token(h) for h in hosts}
    started = httpx.post(f"{a.url}/api/v1/models/retrain", headers=auth[a.url], timeout=60)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    second = httpx.post(f"{c.url}/api/v1/models/retrain", headers=auth[c.url], timeout=60)
    seen: list[tuple[float, str, str, float]] = []
    t0 = time.perf_counter()
    state = "queued"
    while time.perf_counter() - t0 < timeout:
        r = httpx.get(f"{b.url}/api/v1/models/jobs/{job_id}", headers=auth[b.url], timeout=60)
        assert r.status_code == 200, r.text
        job = r.json()
        state = job["state"]
        if not seen or seen[-1][1:3] != (state, job["stage"]):
            seen.append((round(time.perf_counter() - t0, 1), state, job["stage"], job["progress"]))
        if state in ("succeeded", "failed"):
            break
        time.sleep(1.0)
    from sqlalchemy import select

    from triage.store.db import Database
    from triage.store.tables import Job

    db = Database(url)
    with db.read() as s:
        jobs = s.scalars(select(Job).where(Job.kind == "retrain")).all()
        workers = sorted({j.worker or "" for j in jobs})
        result = jobs[0].result if jobs else None
        error = jobs[0].error if jobs else None
    db.dispose()
    return {
        "job": job_id,
        "second_request_on_c": second.status_code,
        "state": state,
        "seconds": round(time.perf_counter() - t0, 1),
        "seen_on_b": [{"t": t, "state": s_, "stage": st, "progress": p} for t, s_, st, p in seen],
        "job_rows": len(jobs),
        "runners": workers,
        "result": result,
        "error": error,
    }


def _retrain_again(hosts: list[Server], timeout: float) -> dict[str, Any]:
    """A second retrain, requested on C and followed there: it registers a second version."""
    c = hosts[2]
    auth = _token(c)
    t0 = time.perf_counter()
    r = httpx.post(f"{c.url}/api/v1/models/retrain", headers=auth, timeout=60)
    assert r.status_code == 202, r.text
    job = r.json()
    while job["state"] not in ("succeeded", "failed") and time.perf_counter() - t0 < timeout:
        time.sleep(1.0)
        job = httpx.get(f"{c.url}/api/v1/models/jobs/{job['id']}", headers=auth, timeout=60).json()
    result = job.get("result") or {}
    return {
        "job": job["id"],
        "state": job["state"],
        "seconds": round(time.perf_counter() - t0, 1),
        "version": result.get("version"),
        "promoted": result.get("promoted"),
        "reasons": result.get("reasons"),
        "error": job.get("error"),
    }


ROUTE_TEXT = "Đề nghị cấp lại giấy phép lái xe bị mất, thủ tục và lệ phí thế nào?"


def _served(host: Server, auth: dict[str, str]) -> dict[str, Any]:
    """What one host serves: the registry version it reports, and the version a routing answer carries."""
    models = httpx.get(f"{host.url}/api/v1/models", headers=auth, timeout=60).json()
    route = httpx.post(f"{host.url}/api/v1/route", json={"text": ROUTE_TEXT}, timeout=60).json()
    return {"registry_version": models.get("served_registry_version"), "route_model_version": route["model_version"]}


def _names(served: dict[str, Any], version: int) -> bool:
    """Both what the host reports and the routing answer it gives name registry ``version``."""
    return (
        served["registry_version"] == version
        and f"|agency:{REGISTRY_MODEL}/v{version}+" in served["route_model_version"]
    )


def _router_hash(served: dict[str, Any]) -> str:
    """The agency router's data hash in a routing answer's model version (``...+router-<hash>|field:...``)."""
    return str(served["route_model_version"]).split("+router-", 1)[-1].split("|", 1)[0]


def _promotion(hosts: list[Server], versions: list[int], champion: int) -> dict[str, Any]:
    """Promote on B the registered version that is not the champion; how long until A and C serve it.

    First every host is seen serving the current champion (the gate's own move, picked up on each
    host's poll), so the promotion below changes what A and C serve and the delay measured is B's.
    """
    a, b, c = hosts
    named = {"A": a, "B": b, "C": c}
    auth = {h.url: _token(h) for h in hosts}
    target = next(v for v in sorted(versions, reverse=True) if v != champion)
    listing = httpx.get(f"{a.url}/api/v1/models", headers=auth[a.url], timeout=60).json()
    champions = [v["version"] for v in listing["versions"] if v["champion"]]
    bound = 4 * MODEL_POLL_S + 60
    t0 = time.perf_counter()
    before = {name: _served(h, auth[h.url]) for name, h in named.items()}
    while time.perf_counter() - t0 < bound and not all(_names(s, champion) for s in before.values()):
        time.sleep(0.5)
        before = {name: _served(h, auth[h.url]) for name, h in named.items()}
    r = httpx.post(f"{b.url}/api/v1/models/{target}/promote", headers=auth[b.url], timeout=120)
    assert r.status_code == 200, r.text
    t0 = time.perf_counter()  # from B's answer: the alias has moved and B serves the target
    change = r.json()
    delays: dict[str, float | None] = {"A": None, "C": None}
    while time.perf_counter() - t0 < bound and None in delays.values():
        for name, host in (("A", a), ("C", c)):
            if delays[name] is None:
                got = httpx.get(f"{host.url}/api/v1/models", headers=auth[host.url], timeout=60).json()
                if got.get("served_registry_version") == target:
                    delays[name] = round(time.perf_counter() - t0, 2)
        time.sleep(0.25)
    after = {name: _served(h, auth[h.url]) for name, h in named.items()}
    changed = {name: _names(before[name], champion) and _names(after[name], target) for name in ("A", "C")}
    weights = {  # the routing answers' router data hash: other weights, not the same model under a new number
        name: _router_hash(before[name]) != _router_hash(after[name]) for name in ("A", "C")
    }
    in_time = all(v is not None and v <= MODEL_POLL_S + 10 for v in delays.values())
    return {
        "registered_versions": sorted(versions),
        "champion_before": champion,
        "champions_listed_before": champions,
        "promoted_on_b": target,
        "change_on_b": {k: change[k] for k in ("before", "after", "served_registry_version")},
        "served_before": before,
        "served_after": after,
        "served_by": delays,
        "changed_on": changed,
        "weights_changed_on": weights,
        "model_poll_s": MODEL_POLL_S,
        "bound_s": MODEL_POLL_S + 10,
        "meets": bool(
            all(changed.values())
            and all(weights.values())
            and in_time
            and champions == [champion]
            and change["before"] == champion
            and change["after"] == target
            and _names(after["B"], target)
        ),
    }


def multi_host(
    embedder: Any, say: Say, *, quick: bool = False, rate: float | None = None, seconds: float | None = None
) -> dict[str, Any]:
    """Run the four checks (module docstring) and return their figures."""
    # 5/s: what this 2-core machine sustained next to the other helpers' suites (load ~12); not a maximum.
    rate = rate or (3.0 if quick else 5.0)
    seconds = seconds or (15.0 if quick else 60.0)
    schema, url = _pg_schema()
    hosts: list[Server] = []
    try:
        n_seed = 300 if quick else 600  # quick: half the labels (the check runs two retrains)
        labels = _seed(url, embedder, n=n_seed)
        say(f"schema {schema}: {labels} reviewed labels imported")
        with tempfile.TemporaryDirectory(prefix="multi-host-") as tmp:
            root = Path(tmp)
            shared = {
                "TRIAGE_DATABASE_URL": url,
                "TRIAGE_AUDIT_KEY": secrets.token_hex(32),
                "TRIAGE_JWT_SECRET": secrets.token_hex(32),
                "TRIAGE_MLFLOW_URI": f"sqlite:///{root / 'mlflow.db'}",
                "TRIAGE_MLFLOW_ARTIFACTS": str(root / "mlartifacts"),
                "TRIAGE_REGISTRY_MODEL": REGISTRY_MODEL,
                "TRIAGE_MODEL_POLL_S": str(MODEL_POLL_S),
                "TRIAGE_JOB_POLL_S": "1",
                "TRIAGE_ESCALATE_INTERVAL_S": "30",
            }
            for name in "ABC":
                (root / name).mkdir()
                hosts.append(Server(root / name, extra_env=shared))
            started = time.perf_counter()
            for h in hosts:
                h.start(timeout=300)
            say(f"3 hosts up in {time.perf_counter() - started:.0f} s")
            similar = _similar_across(hosts, url)
            say(f"similar across hosts: {similar}")
            intake = asyncio.run(_intake([h.url for h in hosts], rate, seconds))
            say(f"intake: {intake}")
            retrain = _retrain_once(hosts, url, timeout=900)
            say(f"retrain: {retrain}")
            first = (retrain.get("result") or {}).get("version")
            # New reviewed labels, so the second version is other weights (its data hash differs), not a copy.
            more = _more_labels(url, embedder, n_seed, 60)
            say(f"{more} more reviewed labels imported")
            again: dict[str, Any] = (
                _retrain_again(hosts, timeout=900) if first else {"skipped": "the first retrain registered none"}
            )
            again["labels_added_before"] = more
            say(f"second retrain: {again}")
            promotion: dict[str, Any] = {"skipped": "fewer than two registered versions"}
            if first and again.get("version"):
                # The gate promotes the second version when it is no worse (it usually is, with more labels);
                # either way one of the two is the champion and the other is promoted by hand on B.
                champion = int(again["version"]) if again["promoted"] else int(first)
                promotion = _promotion(hosts, [int(first), int(again["version"])], champion)
            say(f"promotion: {promotion}")
    finally:
        for h in hosts:
            h.stop()
        _drop(schema)
    cores = _cpus()
    return {
        "hosts": 3,
        "database": "PostgreSQL (local, fresh schema per run)",
        "cores": cores,
        "similar_across_hosts": similar,
        "intake": intake,
        "per_core_acknowledged_per_s": round(intake["acknowledged_rate"] / cores, 2),
        "retrain": retrain,
        "second_retrain": again,
        "promotion": promotion,
        "passed": bool(
            similar["found"]
            and intake["errors"] == 0
            and intake["lost"] == 0
            and retrain["job_rows"] == 1
            and retrain["second_request_on_c"] == 409
            and len(retrain["runners"]) == 1
            and retrain["state"] == "succeeded"
            and again.get("state") == "succeeded"
            and promotion.get("meets") is True
        ),
    }
