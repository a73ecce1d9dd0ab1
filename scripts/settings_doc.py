"""Write docs/settings.md from the Settings field descriptions (`--check`: exit 1 when it is stale instead)."""

from __future__ import annotations

import sys
from pathlib import Path

from triage.config import settings_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def main(argv: list[str]) -> int:
    text = settings_markdown()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is stale: run `python scripts/settings_doc.py`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
