"""The pages stand on shared service modules, not on the app or the API's route modules.

The import-linter contract checks the same statically; this runs the imports, so a cycle hidden in a
package ``__init__`` or a module-level side effect shows up too.
"""

from __future__ import annotations

import pytest

from tests.probe import loaded_by, tops

PAGE_MODULES = [
    "service.web.staff",
    "service.web.models",
    "service.web.labels",
    "service.web.reports",
    "service.web.public",
    "service.web.theme_page",
]


@pytest.mark.parametrize("module", PAGE_MODULES)
def test_a_page_module_imports_without_the_app_or_the_api(module: str) -> None:
    loaded = loaded_by(module)
    assert module in loaded
    bad = sorted(m for m in loaded if m == "service.app" or m.startswith("service.api"))
    assert not bad, f"{module} pulls in {bad}"


def test_the_theme_file_renderer_needs_no_web_framework() -> None:
    """`triage themes --out x.html` renders the page template without FastAPI or a request."""
    assert not tops(loaded_by("service.web.theme_page")) & {"fastapi", "starlette"}
