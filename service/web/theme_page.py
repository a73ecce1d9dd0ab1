"""The theme report as HTML: one template (``reports/themes.html``) for the analyst page and the file.

The analyst page includes the template inside its layout; ``render_report`` renders it alone as one
self-contained file (the app's stylesheet inline, no script, nothing fetched) for ``triage themes``.
"""

from __future__ import annotations

from functools import cache

from markupsafe import Markup

from service.web.templating import ENV, STATIC_DIR
from triage.cases.theme_report import ThemeReport

TEMPLATE = "reports/themes.html"
PAGE_THEMES = 10  # the analyst page lists the emerging themes, then the largest, up to this many
FILE_THEMES = 30


@cache
def _stylesheet() -> Markup:
    return Markup((STATIC_DIR / "app.css").read_text(encoding="utf-8"))  # our own file: safe to inline


def render_report(report: ThemeReport, *, max_themes: int = FILE_THEMES) -> str:
    """The report as one HTML file that opens offline."""
    template = ENV.get_template(TEMPLATE)
    return template.render(theme_report=report, standalone=True, css=_stylesheet(), max_themes=max_themes)
