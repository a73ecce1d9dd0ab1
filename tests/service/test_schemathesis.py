"""schemathesis (its CLI, `st run`) against a real `triage serve`: no generated request may cause a 5xx."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from benchmarks.load.server import Server

PASSWORD = "schemathesis-admin-pw"


@pytest.mark.slow
@pytest.mark.usefixtures("encoder_path")
def test_openapi_fuzzing_finds_no_server_error(tmp_path: Path) -> None:
    server = Server(tmp_path, extra_env={"TRIAGE_DEV_ADMIN_PASSWORD": PASSWORD})
    server.start()
    try:
        token = httpx.post(server.url + "/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
        assert token.status_code == 200, token.text
        st = Path(sys.executable).parent / "st"
        run = subprocess.run(
            [
                str(st),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "25",
                "--phases",
                "examples,coverage,fuzzing",
                "--workers",
                "1",
                "-H",
                f"Authorization: Bearer {token.json()['access_token']}",
                "--seed",
                "0",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        server.stop()
    report = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    generated = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert generated and int(generated.group(2)) >= 200, report  # it really sent a few hundred requests
