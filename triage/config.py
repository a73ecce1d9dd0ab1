"""All settings in one typed place; environment variables use the TRIAGE_ prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Defaults run everything on one machine: local model folders, SQLite, MLflow on sqlite."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    model_dir: Path = Field(default=REPO_ROOT / "models", description="Root of the local model store.")
    encoder_path: Path | None = Field(
        default=None,
        description="A local sentence-transformers folder; None = the newest built e5 under model_dir/encoder.",
    )
    encoder_backend: str = Field(default="onnx", description="'onnx' (int8 fast path) or 'torch' (fp32).")
    encoder_threads: int = Field(default=0, description="Threads for inference; 0 = all cores.")
    router_path: Path | None = Field(
        default=None, description="Supervised agency router folder; None = cold start only."
    )
    data_dir: Path = Field(default=REPO_ROOT / "var", description="Service data (SQLite file, indexes).")
    shared_data_dir: Path = Field(
        default=REPO_ROOT.parent / "shared" / "data",
        description="Public datasets used by benchmarks and tests (never by the product).",
    )
    abstain_threshold: float = Field(default=0.0, ge=0.0, le=1.0)
    cold_start_weight: float = Field(
        default=0.2, ge=0.0, le=1.0, description="Weight of cold-start scores when a supervised router exists."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Cached settings; tests build their own Settings(...) instead of mutating this one."""
    return Settings()
