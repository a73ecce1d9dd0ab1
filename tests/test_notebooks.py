"""The analyst notebooks run top to bottom on a small slice of real data (nbclient, the current Python)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_emerging_topics_notebook_runs(shared_data: Path, encoder_path: Path, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="dev dependency: pip install -e .[dev]")
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "notebooks" / "emerging_topics.ipynb", as_version=4)
    # 12 articles per topic per week (the notebook's default). The finer, seed-free themes of issue 21 cut
    # a news topic into sub-themes (football, tennis...): at 8 a week the tripled sport topic's largest
    # sub-theme reached q 0.09 on these articles (18 recent vs 31 baseline); at 12 it is inside the bar.
    env = {"THEMES_NB_PER_WEEK": "12", "THEMES_NB_OUT": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    old = {k: os.environ.get(k) for k in [*env, "PYTHONPATH"]}
    os.environ.update(env)
    # the kernel is this interpreter ("python3" resolves to ipykernel in sys.executable) and imports this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), old["PYTHONPATH"]) if p)
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "ok" in outputs.splitlines()
    assert (tmp_path / "emerging_topics.html").read_text(encoding="utf-8").startswith("<!doctype html>")
