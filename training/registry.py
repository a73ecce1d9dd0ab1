"""The MLflow model registry as the routing models' source of truth: versions, the `champion` alias, history.

Tracking and registry live on a local sqlite database (``data_dir/mlflow.db``) with an artifact
folder by default, or on a server (``TRIAGE_MLFLOW_URI``). A registered version's source is the
bundle folder logged by its retrain run. The alias ``champion`` names the version the service
serves; every move of it is appended to the registered model's ``champion_history`` tag, which is
what ``rollback`` walks back along.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.config import Settings
from triage.errors import Conflict, NotFound
from triage.nlp.manifest import is_model_folder

log = logging.getLogger("training.registry")
CHAMPION = "champion"
HISTORY_TAG = "champion_history"


def tracking_uri(settings: Settings) -> str:
    return settings.mlflow_uri or f"sqlite:///{Path(settings.data_dir).resolve() / 'mlflow.db'}"


def artifact_root(settings: Settings) -> Path:
    return Path(settings.mlflow_artifacts or Path(settings.data_dir) / "mlruns").resolve()


@dataclass(frozen=True)
class VersionInfo:
    version: int
    run_id: str | None
    source: str
    tags: dict[str, str]
    champion: bool

    @property
    def label(self) -> str:
        return self.tags.get("label", f"v{self.version}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "champion": self.champion,
            "macro_f1": _float(self.tags.get("macro_f1")),
            "top1": _float(self.tags.get("top1")),
            "gate": self.tags.get("gate"),
            "reasons": self.tags.get("reasons", ""),
            "created_by": self.tags.get("created_by"),
        }


def _float(v: str | None) -> float | None:
    try:
        return None if v is None else float(v)
    except ValueError:
        return None


class ModelRegistry:
    """One registered model (``settings.registry_model``) in the configured MLflow store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uri = tracking_uri(settings)
        self.name = settings.registry_model
        self._client: Any = None

    def available(self) -> bool:
        """False for a local sqlite store that was never created (nothing registered yet: start nothing)."""
        if self.uri.startswith("sqlite:///"):
            return Path(self.uri.removeprefix("sqlite:///")).exists()
        return True

    @property
    def client(self) -> Any:
        if self._client is None:
            import mlflow
            from mlflow import MlflowClient

            if self.uri.startswith("sqlite:///"):
                Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            mlflow.set_tracking_uri(self.uri)
            mlflow.set_registry_uri(self.uri)
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.settings.mlflow_experiment)
        if exp is not None:
            return str(exp.experiment_id)
        location = None if self.settings.mlflow_uri else artifact_root(self.settings).as_uri()
        return str(self.client.create_experiment(self.settings.mlflow_experiment, artifact_location=location))

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name, description="Agency (and field) routing bundle of pakn-triage; alias 'champion' is served."
            )

    def register(self, *, source: str, run_id: str, tags: dict[str, str]) -> int:
        self._ensure_model()
        mv = self.client.create_model_version(self.name, source=source, run_id=run_id, tags=tags)
        return int(mv.version)

    def tag_version(self, version: int, key: str, value: str) -> None:
        self.client.set_model_version_tag(self.name, str(version), key, value)

    def _info(self, mv: Any, champion: int | None) -> VersionInfo:
        return VersionInfo(
            version=int(mv.version),
            run_id=mv.run_id,
            source=str(mv.source),
            tags=dict(mv.tags or {}),
            champion=champion == int(mv.version),
        )

    def champion(self) -> VersionInfo | None:
        """The served version, or None when nothing was ever promoted (or no store exists yet)."""
        if not self.available():
            return None
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(self.name, CHAMPION)
        except MlflowException:
            return None
        return self._info(mv, int(mv.version))

    def version(self, version: int) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        if not self.available():  # asking must not create an empty store
            raise NotFound(f"{self.name} has no version {version}")
        try:
            mv = self.client.get_model_version(self.name, str(version))
        except MlflowException:
            raise NotFound(f"{self.name} has no version {version}") from None
        champ = self.champion()
        return self._info(mv, champ.version if champ else None)

    def versions(self) -> list[VersionInfo]:
        if not self.available():
            return []
        champ = self.champion()
        found = self.client.search_model_versions(f"name = '{self.name}'")
        return sorted(
            (self._info(mv, champ.version if champ else None) for mv in found), key=lambda v: v.version, reverse=True
        )

    def history(self) -> list[int]:
        from mlflow.exceptions import MlflowException

        try:
            tags = self.client.get_registered_model(self.name).tags or {}
        except MlflowException:
            return []
        return [int(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]

    def promote(self, version: int, *, reason: str) -> VersionInfo:
        """Point `champion` at ``version`` (it must exist) and append it to the history."""
        info = self.version(version)
        self.client.set_registered_model_alias(self.name, CHAMPION, str(version))
        history = [*self.history(), version][-100:]
        self.client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(history))
        self.tag_version(version, "promoted_reason", reason[:500])
        log.warning("champion of %s is now version %s (%s)", self.name, version, reason)
        return info

    def predecessor(self) -> int | None:
        """The version a rollback would serve: the last champion before the current one, if any."""
        champ = self.champion()
        if champ is None:
            return None
        history = self.history()
        while history and history[-1] == champ.version:
            history.pop()
        return history[-1] if history else None

    def rollback(self) -> VersionInfo:
        """Move `champion` back to the version that held it before the current one (Conflict when none did).

        The current holder is dropped from the end of the history, so repeated rollbacks walk further back.
        """
        history = self.history()
        champ = self.champion()
        if champ is not None:
            while history and history[-1] == champ.version:
                history.pop()
        if champ is None or not history:
            raise Conflict("nothing to roll back to: the champion has no predecessor")
        previous = history[-1]
        self.client.set_registered_model_alias(self.name, CHAMPION, str(previous))
        self.client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(history))
        self.tag_version(previous, "promoted_reason", f"rollback from version {champ.version}")
        return self.version(previous)

    def run_metrics(self, info: VersionInfo) -> dict[str, Any]:
        """The evaluation of a version's retrain run on the frozen slice: overall metrics and per agency.

        Read from the run's MLflow metrics (``top1``, ``top3``, ``macro_f1``, ``ece``, ...,
        ``f1_<code>``); an empty dict when the version has no run or the run is gone.
        """
        from mlflow.exceptions import MlflowException

        if not info.run_id:
            return {}
        try:
            logged: dict[str, float] = dict(self.client.get_run(info.run_id).data.metrics)
        except MlflowException:
            return {}
        keys = ("top1", "top3", "macro_f1", "weighted_f1", "ece")
        overall: dict[str, Any] = {k: logged[k] for k in keys if k in logged}
        per: dict[str, dict[str, float]] = {}
        for key, value in logged.items():
            stat, _, code = key.partition("_")
            if stat in ("precision", "recall", "f1", "support") and code:
                per.setdefault(code, {})[stat] = value
        return {**overall, "per_agency": dict(sorted(per.items()))}

    def download(self, info: VersionInfo, cache: Path | None = None) -> Path:
        """The version's bundle folder on local disk (downloaded once into a cache, atomically).

        Open it with ``triage.nlp.artifacts.load``: versions registered before the manifest protocol
        (``bundle.json``) are read there too.
        """
        import mlflow

        root = Path(cache or Path(self.settings.data_dir) / "models" / "registry" / self.name)
        target = root / f"v{info.version}"
        if is_model_folder(target):
            return target
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=info.source, dst_path=tmp))
            if not is_model_folder(got):
                raise NotFound(f"version {info.version} of {self.name} holds no routing bundle at {info.source}")
            try:
                got.rename(target)
            except OSError:  # another process downloaded it first
                if not is_model_folder(target):
                    shutil.rmtree(target, ignore_errors=True)
                    raise
        return target
