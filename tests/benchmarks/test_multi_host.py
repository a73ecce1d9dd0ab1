"""Three `triage serve` hosts on one PostgreSQL (issue 24): intake round-robin with nothing lost, a case
filed on A among B's similar cases, a retrain started on A run once and followed on B, a promotion on B
served by A and C within the poll interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.multi_host import MODEL_POLL_S, multi_host


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_three_hosts_share_one_database(embedder: Any, shared_data: Path) -> None:
    # 3/s for 15 s: a rate this 2-core machine sustains next to the other suites (the benchmark measures
    # the highest; see benchmarks/results/multi_host.json).
    out = multi_host(embedder, print, quick=True, rate=3.0, seconds=15.0)
    intake = out["intake"]
    assert intake["sent"] == 45 and intake["errors"] == 0 and intake["lost"] == 0, intake
    assert out["similar_across_hosts"]["found"], out["similar_across_hosts"]
    retrain = out["retrain"]
    assert retrain["job_rows"] == 1 and len(retrain["runners"]) == 1, retrain
    assert retrain["second_request_on_c"] == 409, retrain
    assert retrain["state"] == "succeeded", retrain
    assert any(step["state"] == "running" for step in retrain["seen_on_b"]), retrain
    served = out["promotion"]["served_by"]
    assert all(v is not None and v <= MODEL_POLL_S + 10 for v in served.values()), out["promotion"]
