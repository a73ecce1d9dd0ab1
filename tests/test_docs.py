"""The docs a newcomer reads: a short README, links that resolve, figures only in the generated summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "service" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_summary_is_generated_from_the_results() -> None:
    from benchmarks.run import SUMMARY, summary_markdown

    assert SUMMARY == REPO / "benchmarks" / "results" / "summary.md"
    assert SUMMARY.read_text(encoding="utf-8") == summary_markdown(), "stale: run `triage bench` (or write_summary())"


def test_readme_is_short_and_links_the_figures() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 12 * 1024
    assert "bench:start" not in readme  # the benchmarks regenerate summary.md, not the README
    assert "benchmarks/results/summary.md" in readme


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    broken = [
        target
        for target, _ in LINK.findall(text)
        if not target.startswith(("http://", "https://", "mailto:")) and not (doc.parent / target).exists()
    ]
    assert broken == []
