"""All settings in one typed place; environment variables use the TRIAGE_ prefix.

Relative paths (the defaults ``models``, ``var`` and ``../shared/data`` among them) resolve against the
working directory, as ``.env`` does: run from a checkout's root, they name its folders; an installed package
never looks inside itself for models or writes data there. ``docs/settings.md`` is generated from the field
descriptions here (``python scripts/settings_doc.py``; a test fails when it is stale).
"""

from __future__ import annotations

import types
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TRIAGE_"


class Settings(BaseSettings):
    """Defaults run everything on one machine: local model folders, SQLite, MLflow on sqlite."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    model_dir: Path = Field(
        default=Path("models"),
        description="Root of the local model store: encoder/<id>/ (built by `triage build-models`), moderation/, "
        "router folders.",
    )
    encoder_path: Path | None = Field(
        default=None,
        description="Any local sentence-transformers folder (loaded offline); None = the newest built e5 under "
        "model_dir/encoder.",
    )
    encoder_backend: Literal["onnx", "torch"] = Field(
        default="onnx", description="'onnx' (int8 fast path, when the folder has one) or 'torch' (fp32)."
    )
    encoder_threads: int = Field(default=0, description="Encoder inference threads; 0 = all cores.")
    encoder_spin: bool = Field(
        default=False, description="Let ONNX Runtime threads spin between ops (faster alone, costly beside requests)."
    )
    encoder_batch_wait_ms: float = Field(
        default=2.0, ge=0.0, le=100.0, description="Service: wait this long to batch concurrent encodes; 0 = off."
    )
    blas_threads: int = Field(
        default=1,
        ge=0,
        description="Service: BLAS threads for numpy/scikit-learn (0 = library default); ONNX Runtime has its own.",
    )
    request_threads: int = Field(
        default=8, ge=1, le=256, description="Service: threads running blocking request handlers (per worker)."
    )
    password_checks: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Service: argon2 password checks run at once per worker (each takes 4 threads and 64 MiB); "
        "more logins wait their turn off the event loop, so a login flood cannot starve other requests of CPU.",
    )
    intake_concurrency: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Service: submissions triaged at once per worker (encoder, similar-case search, database "
        "write); more wait their turn off the event loop; 0 = the number of cores.",
    )
    router_path: Path | None = Field(
        default=None,
        description="Supervised agency router folder (`triage train --label-field agency`), used when the MLflow "
        "registry has no champion; None = cold start only.",
    )
    train_embed_budget_chars: int | None = Field(
        default=2_000_000,
        ge=0,
        description="`triage train`: most characters the encoder reads (each text cut to 1,000) before the router "
        "trains on words and characters only (long-article archives); None = always embed.",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Service data: the SQLite file triage.db, the case index (index/cases), the local MLflow store "
        "(mlflow.db, mlruns/) and registry downloads.",
    )
    shared_data_dir: Path = Field(
        default=Path("../shared/data"),
        description="Public datasets read by benchmarks, tests and `triage build-models` (moderator training); "
        "never by the service.",
    )
    cold_start_weight: float = Field(
        default=0.35,
        ge=0.0,
        le=1.0,
        description="Weight of the cold-start scores (catalogue + descriptions) in the geometric mix with a "
        "supervised router's: 0.35 for a router trained on the clerks' own reviews; raise it (0.85) for wording "
        "no label has seen yet.",
    )
    deadline_forward_days: int = Field(
        default=5, ge=1, description="Working days to forward a matter outside the agency's remit (NĐ 20/2008)."
    )
    deadline_answer_days: int = Field(
        default=15, ge=1, description="Working days to answer a submission (Công điện 89/CĐ-TTg, 2025)."
    )
    deadline_due_soon_days: int = Field(
        default=3, ge=0, description="A case with this many working days left or fewer is 'due soon'."
    )
    deadline_overrides: dict[str, int] = Field(
        default_factory=dict,
        description="Answer days per submission kind (phan_anh, kien_nghi, sang_kien, giai_phap), as JSON.",
    )

    # --- service, storage, accounts (intake service) ---
    env: Literal["dev", "production"] = Field(
        default="dev",
        description="'production' refuses to start without jwt_secret and never creates a default account; 'dev' "
        "keeps a generated key in data_dir when jwt_secret is unset.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db; None = SQLite file data_dir/triage.db.",
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key for access tokens and CSRF tokens, at least 32 bytes, the same for all workers and "
        "hosts; unset in dev mode = a random key made once in data_dir/jwt-secret (mode 0600).",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="HMAC key signing the audit chain (never stored in the database; one for all hosts). None = a "
        "random key generated once in data_dir/audit.key; production mode requires it (32+ characters).",
    )
    audit_anchor_file: Path | None = Field(
        default=None,
        description="File the periodic job appends the audit chain head to (outside the database), checked by "
        "`triage audit verify`; None = data_dir/audit-anchors.log.",
    )
    token_minutes: int = Field(default=60, ge=1, le=24 * 60, description="Lifetime of an access token.")
    dev_admin_password: SecretStr | None = Field(
        default=None, description="Dev mode only: create user 'admin' with this password when no account exists."
    )
    intake_rate_per_minute: float = Field(
        default=20.0, gt=0, description="Public submissions per client per minute (token bucket refill rate)."
    )
    intake_burst: int = Field(default=10, ge=1, description="Submissions a client may send at once (bucket size).")
    forwarded_allow_ips: str = Field(
        default="",
        description="Reverse proxies trusted to set X-Forwarded-For: comma-separated addresses or networks "
        '("127.0.0.1,10.0.0.0/8"), "*" for any; as uvicorn\'s --forwarded-allow-ips. The header counts only when '
        "the direct peer is one of them, and the client is its rightmost entry that is not; empty = the peer.",
    )
    text_rate_per_minute: float = Field(
        default=60.0, gt=0, description="Calls per client per minute to POST /api/v1/route and /api/v1/similar."
    )
    text_burst: int = Field(
        default=20, ge=1, description="Calls to /api/v1/route and /api/v1/similar a client may make at once."
    )
    job_poll_s: float = Field(
        default=2.0,
        ge=0,
        description="How often a worker looks for a queued background job (retrain) to claim; 0 = this process "
        "runs none (another worker or host does). A job queued here is taken at once.",
    )
    job_stale_s: float = Field(
        default=300.0,
        gt=0,
        description="A running job whose worker sent no heartbeat for this long (killed, host lost) is queued "
        "again once, then failed.",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="`triage serve` log lines: 'json' (one object per line: time, level, request id, user id, "
        "latency; never texts or personal data), 'text', or 'auto' = json in production, text in dev.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Lowest level logged.")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics (Prometheus) needs 'Authorization: Bearer <token>'; unset = open, so "
        "keep /metrics off the public proxy (docs/deploy.md).",
    )
    export_max_rows: int = Field(
        default=50_000, ge=1, le=1_000_000, description="Most rows in one CSV/XLSX export of cases."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins of one account before it is locked out for a while."
    )
    login_max_failures_per_address: int = Field(
        default=20, ge=1, description="Failed sign-ins from one client address (any account) before a lockout."
    )
    login_lockout_s: float = Field(
        default=30.0, gt=0, description="First lockout; each further failure doubles it (up to login_lockout_max_s)."
    )
    login_lockout_max_s: float = Field(
        default=3600.0,
        gt=0,
        description="Longest lockout; failures older than this are forgotten (the count starts again).",
    )
    escalate_interval_s: float = Field(
        default=3600.0,
        ge=0,
        description="Service: seconds between maintenance passes (triage cases left without a suggestion, save "
        "the case index, escalate missed case deadlines, make new KPI reports due and escalate overdue ones); "
        "0 disables the job.",
    )
    field_router_path: Path | None = Field(
        default=None, description="Supervised field router folder; None = rank the agency's fields by similarity."
    )
    programme_fields_path: Path | None = Field(
        default=None,
        description="Programme field taxonomy (JSON: code, name, zero-shot description per field, plus the "
        "catch-all named by 'other'), suggested beside the agency; None = the packaged Resolution 57-NQ/TW task "
        "groups (triage/data/programme_fields.json).",
    )
    similar_top_k: int = Field(default=5, ge=0, le=50, description="Similar earlier cases shown with a suggestion.")
    duplicate_threshold: float = Field(
        default=0.9298,
        ge=-1.0,
        le=1.0,
        description="Cosine from which a similar earlier case is flagged as a likely duplicate (calibrated on vnPara).",
    )
    duplicate_scorer: Literal["same_matter", "cosine"] = Field(
        default="same_matter",
        description="How a pair of submissions is judged (likely-duplicate flag, campaigns, similar): 'same_matter' = "
        "the calibrated same-matter probability (triage/data/same_matter.npz) re-scoring the index's nearest cases; "
        "'cosine' = the raw embedding cosine with duplicate_threshold and campaign_threshold (for comparison).",
    )
    same_matter_path: Path | None = Field(
        default=None,
        description="Same-matter scorer file (.npz); None = the packaged one (built by scripts/build_same_matter.py).",
    )
    same_matter_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Same-matter probability from which a similar case is a likely duplicate; None = the scorer's own, "
        "chosen for its stated precision on the calibration pairs.",
    )
    same_matter_campaign_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Same-matter probability from which two submissions count as near-identical for a campaign; "
        "None = the scorer's own (chosen for a stricter precision).",
    )
    index_approximate_from: int = Field(
        default=15_000, ge=1, description="Case index: exact search below this many cases, HNSW from it on."
    )
    index_hnsw_m: int = Field(default=48, ge=4, le=128, description="Case index: HNSW neighbours per node (M).")
    index_ef_construction: int = Field(
        default=200, ge=8, description="Case index: HNSW efConstruction (build breadth)."
    )
    index_ef_search: int = Field(default=96, ge=8, description="Case index: HNSW efSearch (recall vs latency).")
    campaign_threshold: float = Field(
        default=0.96, ge=-1.0, le=1.0, description="Cosine from which two submissions count as near-identical."
    )
    campaign_window_days: float = Field(
        default=7.0, gt=0, description="Near-identical submissions at most this many days apart join one campaign."
    )
    campaign_min_size: int = Field(
        default=3, ge=2, description="A group is listed and badged as a campaign from this many cases on."
    )

    # --- moderation flags (abuse / spam) for a clerk's review; nothing is removed automatically ---
    moderation_enabled: bool = Field(default=True, description="Screen new submissions for abuse and spam.")
    moderation_path: Path | None = Field(
        default=None, description="Moderator folder; None = model_dir/moderation (built by `triage build-models`)."
    )
    moderation_abuse_threshold: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Flag for a clerk when P(offensive) + P(hate) reaches this; None = the threshold chosen "
        "when the moderator was built (for moderation_max_false_flag_rate on civic texts).",
    )
    moderation_spam_threshold: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Flag for a clerk when P(spam) reaches this; None = the threshold chosen when the moderator "
        "was built.",
    )
    moderation_max_false_flag_rate: float = Field(
        default=0.002,
        ge=0.0,
        lt=1.0,
        description="Building the moderator chooses both thresholds (never below 0.5) so that at most this share "
        "of held-out civic texts (portal FAQ questions, legal questions, feedback) is flagged.",
    )

    # --- learning loop: reviewed labels -> retrain -> MLflow registry -> champion gate ---
    mlflow_uri: str | None = Field(
        default=None,
        description="MLflow tracking and registry URI (e.g. http://mlflow:5000); None = sqlite:///data_dir/mlflow.db.",
    )
    mlflow_artifacts: Path | None = Field(
        default=None, description="Artifact folder for a local MLflow store; None = data_dir/mlruns."
    )
    mlflow_experiment: str = Field(default="pakn-triage-routing", description="MLflow experiment of retrain runs.")
    registry_model: str = Field(
        default="pakn-agency-router",
        description="Registered model name in MLflow; its alias 'champion' is what the service serves.",
    )
    model_poll_s: float = Field(
        default=30.0,
        ge=0,
        description="Service: seconds between checks of the registry's 'champion' alias; 0 = only at start-up "
        "and after the process's own retrain jobs.",
    )
    eval_fraction: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="Share of each agency's new labels frozen by `triage eval-slice grow`."
    )
    gate_tolerance: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Champion gate: a challenger's macro F1 may be this much lower."
    )
    gate_min_support: int = Field(
        default=5, ge=1, description="Champion gate: agencies with at least this many eval labels are checked."
    )
    gate_max_agency_drop: float = Field(
        default=0.10, ge=0.0, le=1.0, description="Champion gate: largest allowed F1 drop of one checked agency."
    )
    auto_route_precision: float = Field(
        default=0.97, gt=0.0, le=1.0, description="Target precision for the auto-routing threshold (eval slice)."
    )
    auto_route: bool = Field(
        default=False,
        description="Route a new case automatically (actor 'system', audited) when its top agency's score clears "
        "the version's auto-routing threshold.",
    )
    drift_recent_weeks: int = Field(default=1, ge=1, le=52, description="Drift report: weeks compared (the latest).")
    drift_reference_weeks: int = Field(
        default=8, ge=1, le=520, description="Drift report: weeks before them that serve as the reference."
    )
    theme_weeks: int = Field(
        default=12, ge=2, le=104, description="Theme report: weeks covered when no period is given."
    )
    theme_window_weeks: int = Field(
        default=2, ge=1, le=26, description="Theme report: recent weeks tested for growth against the weeks before."
    )
    theme_min_submissions: int = Field(
        default=30, ge=2, description="Theme report: fewer submissions with embeddings than this give no themes."
    )
    theme_alpha: float = Field(
        default=0.05, gt=0.0, lt=1.0, description="Theme report: false-discovery rate of the emerging test (BH)."
    )
    theme_min_growth: float = Field(
        default=1.5, ge=1.0, description="Theme report: an emerging theme's share must grow at least this much."
    )
    theme_max_encode: int = Field(
        default=5000, ge=0, description="Theme report: submissions stored without a vector encoded per report, at most."
    )
    theme_min_size: int = Field(
        default=5, ge=1, description="Theme report: an emerging theme needs this many submissions in the window."
    )
    kpi_registry_path: Path | None = Field(
        default=None,
        description="Resolution-57 monitoring: the indicator registry file (YAML or JSON); None = the packaged "
        "triage/data/kpi_r57.yaml.",
    )
    kpi_outlier_z: float = Field(
        default=3.5,
        gt=0,
        description="Resolution-57 monitoring: robust z-score (median/MAD of the agency's own series) above which "
        "a reported value is flagged for the coordinator (flagged, never refused).",
    )
    # ---- uploads (citizen attachments and any other feature's files) and the citizen's follow-up ----
    upload_max_files: int = Field(
        default=5, ge=0, le=50, description="Uploads: files per submission (or per upload form), at most; 0 = none."
    )
    upload_max_file_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Uploads: bytes per file, at most (checked while receiving)."
    )
    upload_max_total_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1024,
        description="Uploads: bytes of all files of one form, at most; the streamed body is cut off past this "
        "plus the form's own limit.",
    )
    upload_types: list[Literal["pdf", "jpeg", "png", "webp", "docx", "xlsx", "odt"]] = Field(
        default=["pdf", "jpeg", "png", "webp", "docx", "xlsx", "odt"],
        description="Uploads: accepted types, recognised by content (magic bytes, zip parts), never by name.",
    )
    upload_max_pixels: int = Field(
        default=40_000_000,
        ge=10_000,
        description="Uploads: pixels of an image, at most (read from its header before decoding: bomb guard).",
    )
    upload_scan_command: str | None = Field(
        default=None,
        description="Uploads: a virus scanner run on each file (its path appended, e.g. 'clamdscan --no-summary'); "
        "exit status 0 = clean, anything else refuses the file; none = no scan.",
    )
    upload_scan_timeout_s: float = Field(
        default=60.0, gt=0, le=600, description="Uploads: seconds the scan command may take; past it, refused."
    )
    followup_deadline: Literal["restart", "continue"] = Field(
        default="restart",
        description="Citizen follow-up: when a returned case gets the missing information, 'restart' counts the "
        "deadlines again from that day; 'continue' keeps the deadlines set at receipt.",
    )
    followup_not_solved: Literal["reopen", "escalate"] = Field(
        default="reopen",
        description="Citizen follow-up: an answer rated 'not solved' 'reopen's the case (back to the handler) or "
        "'escalate's it (flagged for the supervising admin; the case stays answered).",
    )
    open311_api_key: SecretStr | None = Field(
        default=None,
        description="Open311 GeoReport v2: when set, POST requests.json and listing requests without ids need "
        "this api_key; none = anyone may file, and requests are read by id only.",
    )

    # --- notifications: an outbox in the database, delivered by a worker (docs/notifications.md) ---
    smtp_host: str | None = Field(
        default=None, description="SMTP server for notification e-mails; None = e-mails wait in the outbox."
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP server port (587 with STARTTLS, 465 SSL).")
    smtp_user: str | None = Field(default=None, description="SMTP login; None = send without AUTH.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password for smtp_user.")
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        default="none", description="SMTP transport security: 'none', 'starttls' (port 587) or 'ssl' (port 465)."
    )
    smtp_timeout_s: float = Field(default=20.0, gt=0, description="Seconds before an SMTP conversation gives up.")
    smtp_from: str = Field(
        default="PAKN <no-reply@pakn.localhost>", description="From: address of notification e-mails."
    )
    notify_poll_s: float = Field(
        default=5.0,
        ge=0,
        description="Service: how often the notification worker looks for due messages; 0 = this process "
        "delivers none (`triage notify run` or another worker does).",
    )
    notify_batch: int = Field(default=50, ge=1, le=1000, description="Messages one worker claims at a time.")
    notify_max_attempts: int = Field(
        default=8,
        ge=1,
        description="Delivery attempts before a message is marked failed (kept; `triage notify retry` queues it "
        "again).",
    )
    notify_backoff_s: float = Field(
        default=30.0, gt=0, description="Wait before the first retry; each further failure doubles it."
    )
    notify_backoff_max_s: float = Field(default=3600.0, gt=0, description="Longest wait between two retries.")
    notify_lease_s: float = Field(
        default=300.0,
        gt=0,
        description="A message claimed this long ago and not marked sent (its worker was killed) is claimed "
        "again; keep it above smtp_timeout_s times the batch.",
    )
    notify_agency_contacts: dict[str, str] = Field(
        default_factory=dict,
        description="Agency code -> contact e-mail, told when one of its cases misses a deadline (JSON, e.g. "
        '{"BKHCN": "pakn@most.gov.vn"}).',
    )
    notify_default_contact: str | None = Field(
        default=None, description="Contact e-mail for overdue cases of agencies not in notify_agency_contacts."
    )
    public_base_url: str = Field(
        default="http://localhost:8000",
        description="The service's public address, for links in notifications (tracking page, case page).",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Cached settings; tests build their own Settings(...) instead of mutating this one."""
    return Settings()


def _type_name(tp: Any) -> str:
    """``Path | None``, ``'dev' | 'production'``, ``dict[str, int]``: the annotation as a reader writes it."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return "None" if tp is type(None) else str(getattr(tp, "__name__", tp))


_BOUNDS = {annotated_types.Ge: ">=", annotated_types.Gt: ">", annotated_types.Le: "<=", annotated_types.Lt: "<"}


def _bounds(metadata: list[Any]) -> str:
    """``>= 0, <= 1`` from the field's ge/gt/le/lt constraints."""
    return ", ".join(
        f"{sign} {getattr(m, cls.__name__.lower())}"
        for m in metadata
        for cls, sign in _BOUNDS.items()
        if isinstance(m, cls)
    )


def _default(field: Any) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    return str(value)


def settings_markdown(settings_cls: type[BaseSettings] = Settings) -> str:
    """docs/settings.md: every field of `Settings` with its variable, type, default and description."""
    lines = [
        "# Settings",
        "",
        "<!-- Generated from the field descriptions in triage/config.py by `python scripts/settings_doc.py`;",
        "     do not edit by hand (tests/triage/test_config.py fails when this file is stale). -->",
        "",
        f"Every setting is an environment variable with the `{ENV_PREFIX}` prefix (or a line in a `.env` file in",
        "the working directory). Relative paths resolve against the working directory: run from a checkout's",
        "root, the defaults name its `models/` and `var/` folders and the shared datasets in `../shared/data`.",
        "Lists and dictionaries are given as JSON. Read them in code with `triage.config.get_settings()`.",
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in settings_cls.model_fields.items():
        if not field.description:
            raise ValueError(f"{settings_cls.__name__}.{name} has no description")
        kind = _type_name(field.annotation)
        bounds = _bounds(field.metadata)
        cell = f"`{kind}`" + (f" ({bounds})" if bounds else "")
        row = [f"`{ENV_PREFIX}{name.upper()}`", cell, f"`{_default(field)}`", field.description]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines) + "\n"
