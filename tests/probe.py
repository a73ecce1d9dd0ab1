"""What a fresh interpreter loads when it imports some modules of this tree (the test process itself has
long since imported everything, so only a new one can tell)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_PROBE = """
import importlib, json, pkgutil, sys
names = sys.argv[1:]
walk = names[0] == "--walk"
for name in names[walk:]:
    module = importlib.import_module(name)
    if walk:
        for sub in pkgutil.walk_packages(module.__path__, name + "."):
            importlib.import_module(sub.name)
print(json.dumps({"file": sys.modules["triage"].__file__, "modules": sorted(sys.modules)}))
"""


def loaded_by(*modules: str, walk: bool = False) -> set[str]:
    """The modules a fresh interpreter holds after importing ``modules`` from this tree (and, with
    ``walk``, every module below them)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-c", _PROBE, *(["--walk"] if walk else []), *modules]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).resolve().is_relative_to(REPO), f"imported {out['file']}, not this tree"
    return set(out["modules"])


def tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}
