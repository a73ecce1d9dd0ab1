"""The pages stand on shared service modules, not on the app or the API's route modules.

The import-linter contract checks the same statically; this runs the imports, so a cycle hidden in a
package ``__init__`` or a module-level side effect shows up too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

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
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m == 'service.app' or m.startswith('service.api'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"


def test_the_theme_file_renderer_needs_no_web_framework() -> None:
    """`triage themes --out x.html` renders the page template without FastAPI or a request."""
    code = "import sys, service.web.theme_page\nprint(sorted(m for m in ('fastapi', 'starlette') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
