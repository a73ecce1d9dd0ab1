"""Sustain N submissions/s for T seconds against `triage serve`, then check every 201 is stored.

Open loop: requests are sent on a fixed schedule whatever the latency, so a slow server shows up
as latency and errors rather than as a politely reduced rate. Loopback only.
Run: `python -m benchmarks.load.run [--rate 50 --seconds 60]`; writes benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import write_result
from benchmarks.load.server import Server

KINDS = ["phan_anh", "kien_nghi", "sang_kien", "giai_phap"]
SAMPLES = [
    "Đường liên xã bị sụt lún nghiêm trọng sau mưa lớn, đề nghị sửa chữa sớm",
    "Kiến nghị đơn giản hóa thủ tục cấp giấy phép xây dựng nhà ở riêng lẻ",
    "Bệnh viện huyện thiếu thuốc bảo hiểm y tế, người bệnh phải tự mua ngoài",
    "Đề xuất giải pháp số hóa hồ sơ đăng ký doanh nghiệp cho hộ kinh doanh",
    "Sáng kiến dùng dữ liệu dân cư để cấp lại căn cước công dân trực tuyến",
    "Trường tiểu học thiếu giáo viên tiếng Anh và tin học",
    "Hóa đơn điện tăng bất thường trong tháng sáu, đề nghị kiểm tra công tơ",
    "Doanh nghiệp khởi nghiệp chờ quá lâu để được cấp văn bằng sáng chế",
]


def payload(i: int, rng: random.Random) -> dict[str, Any]:
    text = rng.choice(SAMPLES)
    return {
        "kind": KINDS[i % 4],
        "submitter_type": "citizen",
        "title": f"{text[:60]} #{i}",
        "content": f"{text}. Mã tham chiếu thử tải {i}. " + rng.choice(SAMPLES),
        "province": rng.choice([None, "Hà Nội", "Đà Nẵng", "Cần Thơ"]),
    }


async def drive(url: str, rate: float, seconds: float) -> dict[str, Any]:
    rng = random.Random(0)
    n = int(rate * seconds)
    results: list[tuple[int, float, str | None, dict[str, Any]]] = []
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:

        async def one(i: int, body: dict[str, Any]) -> None:
            t = time.perf_counter()
            try:
                r = await client.post("/api/v1/submissions", json=body, headers={"Idempotency-Key": f"load-{i}"})
                code = r.json().get("tracking_code") if r.status_code == 201 else None
                results.append((r.status_code, time.perf_counter() - t, code, body))
            except httpx.HTTPError as exc:
                results.append((0, time.perf_counter() - t, None, {"error": repr(exc)}))

        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, payload(i, rng))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        # Every acknowledged submission must be retrievable, with what was sent.
        stored = 0
        for status, _, code, _body in results:
            if status == 201 and code:
                r = await client.get(f"/api/v1/track/{code}")
                stored += r.status_code == 200
    lat = sorted(x[1] * 1000 for x in results if x[0] == 201)
    ok = sum(1 for x in results if x[0] == 201)
    return {
        "target_rate": rate,
        "seconds": seconds,
        "sent": n,
        "acknowledged_201": ok,
        "errors": n - ok,
        "error_codes": sorted({x[0] for x in results if x[0] != 201}),
        "achieved_rate": round(n / elapsed, 2),
        "acknowledged_and_stored": stored,
        "latency_ms": {
            "p50": round(statistics.median(lat), 1) if lat else None,
            "p95": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
            "p99": round(lat[int(0.99 * (len(lat) - 1))], 1) if lat else None,
            "max": round(lat[-1], 1) if lat else None,
        },
    }


def main(rate: float = 50.0, seconds: float = 60.0, workers: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="triage-load-") as tmp:
        server = Server(Path(tmp), workers=workers)
        server.start()
        try:
            out = asyncio.run(drive(server.url, rate, seconds))
        finally:
            server.stop()
    # Sustained means keeping pace, not only answering eventually: the whole schedule is served at
    # >= 95 % of the target rate and p95 latency stays under 2 s (no growing backlog).
    p95 = out["latency_ms"]["p95"]
    out["passed"] = (
        out["errors"] == 0
        and out["acknowledged_and_stored"] == out["acknowledged_201"]
        and out["achieved_rate"] >= 0.95 * rate
        and p95 is not None
        and p95 < 2000
    )
    out["server"] = f"triage serve ({workers} uvicorn worker(s)), SQLite default, ONNX int8 encoder"
    write_result("load", out)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    print(main(args.rate, args.seconds, args.workers))
