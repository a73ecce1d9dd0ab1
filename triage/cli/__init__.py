"""The `triage` command line: one Typer app, its command groups registered here and nowhere else.

cli is the top layer: it may import `service` (serve) and `training` (retrain, moderation), never the reverse.
"""

from __future__ import annotations

import typer

from triage.cli import archive, core, kpi, learning, moderation, notify, ops

app = typer.Typer(help="pakn-triage: offline triage of Vietnamese citizen feedback.", no_args_is_help=True)
core.register(app)  # build-models, train, predict, route, similar, themes, bench, serve
ops.register(app)  # users, audit, db, index, escalate
learning.register(app)  # retrain, drift, models, eval-slice (MLflow is imported only when they run)
moderation.register(app)  # moderation train|check
kpi.register(app)  # kpi load|due|remind|export|demo (Resolution-57 monitoring)
notify.register(app)  # notify run|status|retry
archive.register(app)  # import (past cases)

__all__ = ["app"]
