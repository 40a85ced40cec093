"""`incident-sim`: one command line for building bundles, indexing incidents and serving /similar.

Training-side commands import torch lazily, so the serving install works without it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from indexing.errors import IncidentSimError
from service.settings import Settings
from training.calibrate import DEFAULT_CONFIDENCE, DEFAULT_TARGET_FALSE_ALARM

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
bundle_app = typer.Typer(help="Build and inspect model bundles.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")
models_app = typer.Typer(help="The bundle registry: list, activate (re-index + switch), roll back.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")

logger = logging.getLogger("incident_sim")


def _setup_logging(level: str, fmt: str = "text") -> None:
    """Text for the command-line tools; JSON lines (with request id, latency, outcome) for the service."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level",
                                                          "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(_quiet_root_info)
    handler.addFilter(_drop_color_message)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _quiet_root_info(record: logging.LogRecord) -> bool:
    """onnxruntime's quantiser logs one INFO line per tensor straight on the root logger."""
    return record.name != "root" or record.levelno >= logging.WARNING


def _drop_color_message(record: logging.LogRecord) -> bool:
    """uvicorn attaches an ANSI-coloured copy of its message; JSON logs keep only the plain one."""
    record.__dict__.pop("color_message", None)
    return True


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: $INCIDENT_SIM_DATA_DIR or ./var).")]


def _settings(data_dir: Path | None, service: bool = False) -> Settings:
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as exc:
        _setup_logging("INFO")
        # never echo the input: it may hold API keys
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False))
        _fail(IncidentSimError(f"invalid settings (INCIDENT_SIM_* environment): {problems}"))
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    _setup_logging(settings.log_level, settings.log_format if service else "text")
    return settings


@bundle_app.command("baseline")
def bundle_baseline(
    data_dir: DataDir = None,
    out: Annotated[Path | None, typer.Option(help="Bundles directory (default: DATA_DIR/bundles).")] = None,
    parity_sample: Annotated[int, typer.Option(min=1, help="Incident texts used to measure INT8 embedding parity.")]
    = 1000,
    parity_corpus_size: Annotated[int, typer.Option(
        min=0, help="Labelled sample incidents on which INT8 retrieval parity (hybrid Recall@10, MRR within 0.5 "
                    "points of FP32) is measured; 0 skips it.")] = 1000,
) -> None:
    """Assemble all-mpnet-base-v2 from its registry packages, export ONNX, quantise to INT8 where parity
    holds, and write a new immutable bundle."""
    settings = _settings(data_dir)
    from training.bundle_writer import build_baseline_bundle

    try:
        path = build_baseline_bundle(out or settings.bundles_dir, parity_sample=parity_sample,
                                     parity_corpus_size=parity_corpus_size)
    except IncidentSimError as exc:
        _fail(exc)
    typer.echo(str(path))


@bundle_app.command("verify")
def bundle_verify(path: Path) -> None:
    """Check a bundle's manifest, every file checksum and its parity record."""
    _setup_logging("INFO")
    from indexing.bundle import load_bundle

    try:
        bundle = load_bundle(path)
    except IncidentSimError as exc:
        _fail(exc)
    typer.echo(f"ok: {bundle.model_version} ({len(bundle.manifest['files'])} files verified)")


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Where to write the incidents (ServiceNow Table API JSON).")] = Path(
        "var/sample_incidents.json"),
    n: Annotated[int, typer.Option(min=1, help="How many incidents.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same incidents).")] = 7,
) -> None:
    """Generate ServiceNow-shaped sample incidents with ground-truth problem/duplicate links."""
    _setup_logging("INFO")
    from training.data.sample import generate_incidents, write_incidents

    path = write_incidents(generate_incidents(n, seed=seed), out)
    typer.echo(f"wrote {n} incidents to {path}")


@app.command()
def index(
    input: Annotated[Path, typer.Option("--input", "-i", help="Incidents: .csv, .json ({'result': [...]}) or .jsonl")],
    data_dir: DataDir = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1024, help="Incidents encoded per batch.")] = 64,
) -> None:
    """Encode incidents and upsert them (dense + BM25 sparse vectors + fields) into the store.
    Point ids derive from the incident number, so re-running is idempotent."""
    settings = _settings(data_dir)
    from indexing.bundle import load_bundle
    from indexing.encoder import OnnxEncoder
    from indexing.incidents import load_incidents
    from indexing.indexer import index_into_catalog
    from service.engine import active_index_meta, open_catalog, resolve_bundle_path

    try:
        incidents = load_incidents(input)
        catalog = open_catalog(settings)
        try:
            bundle = load_bundle(resolve_bundle_path(settings, active_index_meta(catalog)))
            encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length,
                                  intra_op_threads=settings.encoder_threads)
            meta, count = index_into_catalog(incidents, bundle, encoder, catalog, batch_size=batch_size)
        finally:
            catalog.close()
    except IncidentSimError as exc:
        _fail(exc)
    typer.echo(f"index {meta.index_version}: {count} incidents")


DataSource = Annotated[str, typer.Option("--data", help="'seamonkey', 'sample' or an incident export (.csv/.json)")]


def _quality(data: str, data_dir: Path | None, n: int, weak_category: bool, bootstrap: int,
             rule_args: dict[str, Any] | None):  # type: ignore[no-untyped-def]
    settings = _settings(data_dir)
    from indexing.bundle import load_bundle
    from service.engine import resolve_bundle_path
    from training.calibrate import ThresholdRule, calibration_splits
    from training.quality import evaluation_index_dir, load_labelled, run_quality

    bundle = load_bundle(resolve_bundle_path(settings))
    corpus = load_labelled(data, n=n, weak_category=weak_category)
    rule = None
    if rule_args is not None:
        splits, why = calibration_splits(bundle)
        typer.echo(f"calibrating on {why}")
        rule = ThresholdRule(splits=splits, **rule_args)
    report, evaluation, threshold = run_quality(bundle, corpus, rule=rule, n_boot=bootstrap,
                                                index_dir=evaluation_index_dir(settings.data_dir, corpus, bundle))
    return settings, bundle, corpus, report, evaluation, threshold


def _write(report, evaluation, threshold, out: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    from training.report import plots, write_report

    paths = write_report(report, out, name)
    split = "test" if evaluation.split("test") else "validation"
    paths += plots(evaluation, split, threshold, out / name, f"{report['corpus']} ({split} split)",
                   report["threshold"])
    for p in paths:
        typer.echo(f"wrote {p}")
    typer.echo(report["verdict"])


@app.command()
def evaluate(
    data: DataSource = "seamonkey",
    data_dir: DataDir = None,
    n: Annotated[int, typer.Option(help="Incidents to generate when --data sample.")] = 2000,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("benchmarks/results"),
    name: Annotated[str | None, typer.Option(help="Report file stem (default quality-<data>).")] = None,
    bootstrap: Annotated[int, typer.Option(min=100, help="Bootstrap resamples for the intervals.")] = 1000,
    weak_category: Annotated[bool, typer.Option(help="Also treat same category/subcategory as similar (weak, "
                                                     "warned about).")] = False,
) -> None:
    """Evaluate the bundle on labelled data (time-ordered protocol, every incident asked as a new one): dense,
    BM25 and hybrid side by side; per incident (false-alarm rate, hit rate, precision of the flag at the
    bundle's threshold) and per pair, with 95 % intervals; writes JSON, Markdown and PNG plots."""
    try:
        _, _, corpus, report, evaluation, threshold = _quality(data, data_dir, n, weak_category, bootstrap, None)
    except IncidentSimError as exc:
        _fail(exc)
    _write(report, evaluation, threshold, out, name or f"quality-{corpus.name}")


@app.command()
def calibrate(
    data: DataSource = "seamonkey",
    target_false_alarm: Annotated[float | None, typer.Option(
        min=0.0, max=0.5, help="Per-incident false-alarm rate to stay under: the share of new incidents with no "
                               "earlier duplicate that get a result marked similar. The default unit "
                               f"(default {DEFAULT_TARGET_FALSE_ALARM}).")] = None,
    target_fpr: Annotated[float | None, typer.Option(
        min=0.0, max=0.5, help="Instead: false-positive rate over (query, candidate) pairs to stay under "
                               "(the unit used before per-incident calibration).")] = None,
    confidence: Annotated[float, typer.Option(
        min=0.0, max=0.999, help="Confidence that the target holds on later data: the threshold is the lowest whose "
                                 "one-sided Clopper-Pearson upper bound of the rate is <= the target. 0 = the point "
                                 "estimate; otherwise at least 0.5.")] = DEFAULT_CONFIDENCE,
    data_dir: DataDir = None,
    n: Annotated[int, typer.Option(help="Incidents to generate when --data sample.")] = 2000,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("benchmarks/results"),
    bootstrap: Annotated[int, typer.Option(min=100)] = 1000,
) -> None:
    """Choose the threshold on labelled data and write it into a new bundle version. The threshold is the lowest
    whose targeted rate, bounded with --confidence, stays under the target on the calibration splits (train +
    validation for a bundle that was not fine-tuned, validation only for a fine-tuned one; never the test split).
    Also chooses the BM25 normalisation on validation, and reports side by side on the test split what each
    threshold rule reaches."""
    from training.calibrate import UNIT_INCIDENT, UNIT_PAIR

    if target_false_alarm is not None and target_fpr is not None:
        _fail(ValueError("give --target-false-alarm (per incident) or --target-fpr (pairs), not both"))
    if 0.0 < confidence < 0.5:
        _fail(ValueError("--confidence must be 0 (the point estimate) or at least 0.5"))
    if target_fpr is not None:
        rule_args: dict[str, Any] = {"unit": UNIT_PAIR, "target": target_fpr, "confidence": confidence}
    else:
        rule_args = {"unit": UNIT_INCIDENT, "confidence": confidence,
                     "target": DEFAULT_TARGET_FALSE_ALARM if target_false_alarm is None else target_false_alarm}
    try:
        settings, bundle, corpus, report, evaluation, threshold = _quality(data, data_dir, n, False, bootstrap,
                                                                             rule_args)
        from training.calibrate import write_calibrated_bundle

        evaluation_summary = {"corpus": corpus.name, "label_kind": corpus.label_kind,
                              "test": report["splits"]["test"].get("hybrid", {}),
                              "test_per_incident": report["per_incident"]["test"].get("hybrid", {}),
                              "rules_compared": report["rules_compared"],
                              "verdict": report["verdict"]}
        path = write_calibrated_bundle(
            bundle, settings.bundles_dir, report["threshold"], evaluation_summary,
            {"normalization": report["bm25_normalization"]["chosen"],
             "normalization_why": report["bm25_normalization"]["why"]},
            extra={"dense_text": report["dense_text"]})
    except IncidentSimError as exc:
        _fail(exc)
    if report["dense_text"]["mode"] != bundle.dense_text.mode:
        typer.secho(f"dense text mode changed to {report['dense_text']['mode']!r}: the new bundle's vectors differ, "
                    "so it serves only after a re-index (publish it, then `incident-sim models activate`)",
                    fg=typer.colors.YELLOW, err=True)
    _write(report, evaluation, threshold, out, f"calibration-{corpus.name}")
    from training.report import threshold_summary

    typer.echo(threshold_summary(report["threshold"]))
    typer.echo(f"new bundle: {path}")


@app.command()
def train(
    data: DataSource = "seamonkey",
    data_dir: DataDir = None,
    n: Annotated[int, typer.Option(help="Incidents to generate when --data sample.")] = 2000,
    base_model: Annotated[Path | None, typer.Option(
        help="sentence-transformers model folder to fine-tune (default: all-mpnet-base-v2 from its registry "
             "packages).")] = None,
    config: Annotated[Path | None, typer.Option(help="Training config (.json or .toml); flags override it.")] = None,
    full: Annotated[bool | None, typer.Option("--full/--lora", help="Full fine-tuning instead of LoRA.")] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    learning_rate: Annotated[float | None, typer.Option()] = None,
    lora_rank: Annotated[int | None, typer.Option()] = None,
    lora_alpha: Annotated[int | None, typer.Option()] = None,
    target_modules: Annotated[str | None, typer.Option(help="Comma-separated LoRA target modules.")] = None,
    max_pairs: Annotated[int | None, typer.Option(help="Train on at most this many mined pairs.")] = None,
    max_seq_length: Annotated[int | None, typer.Option(help="Truncation while training.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    primary_metric: Annotated[str | None, typer.Option(help="Gate metric: 'mrr' or 'recall@10' (hybrid).")] = None,
    min_improvement: Annotated[float | None, typer.Option(help="Lower CI end must exceed this.")] = None,
    target_false_alarm: Annotated[float | None, typer.Option(
        help="Per-incident false-alarm rate the promoted bundle's threshold keeps under (default 0.05).")] = None,
    target_fpr: Annotated[float | None, typer.Option(help="Instead: pair FPR the threshold keeps under.")] = None,
    confidence: Annotated[float | None, typer.Option(
        help="Clopper-Pearson confidence of the threshold's bound (default 0.95; 0 = point estimate).")] = None,
    name: Annotated[str, typer.Option(help="Name prefix of the new bundle's version.")] = "finetuned",
    force: Annotated[bool, typer.Option(help="Write the bundle even if the gate refuses it (marked NOT gated).")]
    = False,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("benchmarks/results"),
    bundles_dir: Annotated[Path | None, typer.Option(help="Where the new bundle goes (default: DATA_DIR/bundles).")]
    = None,
) -> None:
    """Fine-tune the encoder on labelled incidents (train split only), export it as a bundle and promote it
    only if it beats the served baseline on the time-later test split (hybrid score, paired bootstrap CI).
    Exit status: 0 promoted (or --force), 3 baseline kept (gate refused), 2 bad input."""
    settings = _settings(data_dir)
    import tempfile

    from indexing.bundle import load_bundle
    from service.engine import resolve_bundle_path
    from training.finetune import TrainConfig
    from training.promote import GATE_REFUSED_EXIT_CODE, check_registry_dir, run_training, write_gate_report
    from training.quality import load_labelled

    overrides = {"full": full, "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                 "lora_rank": lora_rank, "lora_alpha": lora_alpha, "max_pairs": max_pairs,
                 "max_seq_length": max_seq_length, "seed": seed, "primary_metric": primary_metric,
                 "min_improvement": min_improvement, "target_fpr": target_fpr,
                 "target_false_alarm": target_false_alarm, "confidence": confidence,
                 "target_modules": [m.strip() for m in target_modules.split(",")] if target_modules else None}
    try:
        from pydantic import ValidationError

        try:
            cfg = (TrainConfig.from_file(config, **overrides) if config is not None
                   else TrainConfig.model_validate({k: v for k, v in overrides.items() if v is not None}))
        except (ValidationError, ValueError, OSError) as exc:
            raise IncidentSimError(f"training config: {exc}") from None
        registry = bundles_dir or settings.bundles_dir
        check_registry_dir(registry)
        baseline = load_bundle(resolve_bundle_path(settings))
        corpus = load_labelled(data, n=n)
        with tempfile.TemporaryDirectory(prefix="base-model-") as tmp:
            if base_model is None:
                from training.baseline import BASE_MODEL, assemble_baseline

                model_dir, model_name = assemble_baseline(Path(tmp)), BASE_MODEL
            else:
                if not (base_model / "config.json").is_file():
                    raise IncidentSimError(f"{base_model} is not a sentence-transformers model folder (no config.json)")
                model_dir, model_name = base_model, str(base_model)
            outcome = run_training(corpus, model_dir, model_name, baseline, cfg, settings.data_dir,
                                   registry, name=name, force=force)
    except IncidentSimError as exc:
        _fail(exc)
    for p in write_gate_report(outcome.report, out, f"finetune-{corpus.name}"):
        typer.echo(f"wrote {p}")
    typer.echo(outcome.report["gate"]["reason"])
    if outcome.bundle_path is not None:
        label = "promoted" if outcome.promoted else "written WITHOUT passing the gate (--force)"
        typer.echo(f"new bundle {label}: {outcome.bundle_path}")
    if not outcome.promoted and not outcome.forced:
        typer.secho("baseline kept: the candidate did not beat it on held-out data", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(code=GATE_REFUSED_EXIT_CODE)


@app.command()
def publish(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory to publish.")],
    data_dir: DataDir = None,
    allow_uncalibrated: Annotated[bool, typer.Option(help="Accept a bundle whose threshold is not calibrated.")]
    = False,
) -> None:
    """Validate a bundle (checksums, INT8 parity, calibrated threshold) and copy it into the registry
    (DATA_DIR/bundles). It does not serve until activated (`models activate` or POST /admin/models/activate)."""
    settings = _settings(data_dir)
    from indexing.registry import BundleRegistry

    try:
        published = BundleRegistry(settings.bundles_dir).publish(bundle, allow_uncalibrated=allow_uncalibrated)
    except IncidentSimError as exc:
        _fail(exc)
    typer.echo(f"published {published.model_version} into {settings.bundles_dir}")


@models_app.command("list")
def models_list(data_dir: DataDir = None) -> None:
    """Bundles in the registry (the active one marked *) and the index versions."""
    settings = _settings(data_dir)
    from indexing.registry import BundleRegistry
    from service.engine import open_catalog

    for e in BundleRegistry(settings.bundles_dir).entries():
        typer.echo(f"{'*' if e.active else ' '} {e.model_version}  created {e.created_at}  threshold "
                   f"{e.threshold_source}  encoder {e.encoder_precision}")
    try:
        catalog = open_catalog(settings)
        active = catalog.active()
        for name, complete in catalog.versions().items():
            typer.echo(f"{'*' if name == active else ' '} index {name}{'' if complete else '  (incomplete)'}")
        catalog.close()
    except IncidentSimError as exc:
        typer.echo(f"index versions unavailable: {exc}", err=True)


def _offline_switcher(settings: Settings):  # type: ignore[no-untyped-def]
    from service.engine import Engine
    from service.hotswap import ModelSwitcher

    engine = Engine.from_settings(settings)
    return engine, ModelSwitcher(engine, page_size=settings.rebuild_page_size, retain=settings.index_versions_kept,
                                 encoder_threads=settings.encoder_threads)


@models_app.command("activate")
def models_activate(
    model_version: Annotated[str, typer.Argument(help="A bundle version in the registry.")],
    data_dir: DataDir = None,
) -> None:
    """Re-embed every stored incident with this bundle into a new index version, verify it, and switch
    bundle and index together. Offline: stop the service first, or use POST /admin/models/activate on the
    running service (which keeps answering meanwhile)."""
    settings = _settings(data_dir)
    try:
        engine, switcher = _offline_switcher(settings)
        try:
            status = switcher.activate(model_version, background=False)
        finally:
            engine.close()
    except IncidentSimError as exc:
        _fail(exc)
    if status.state != "switched":
        _fail(IncidentSimError(f"activation failed, {status.previous_model_version} still active: {status.error}"))
    typer.echo(f"active: {status.model_version} with index {status.index_version} ({status.total} incidents, "
               f"self-retrieval {status.self_retrieval:.2f})")


@models_app.command("rollback")
def models_rollback(data_dir: DataDir = None) -> None:
    """Switch back to the previous model and its kept index version (offline; the service has
    POST /admin/models/rollback)."""
    settings = _settings(data_dir)
    try:
        engine, switcher = _offline_switcher(settings)
        try:
            status = switcher.rollback()
        finally:
            engine.close()
    except IncidentSimError as exc:
        _fail(exc)
    typer.echo(f"active: {status.model_version} with index {status.index_version}")


@models_app.command("compact")
def models_compact(data_dir: DataDir = None) -> None:
    """Compact the active index now: a fresh copy with HNSW over every incident and deletes vacuumed (Qdrant
    Edge; a Qdrant server does this by itself). Offline; the running service compacts in the background
    after INCIDENT_SIM_COMPACT_AFTER_WRITES pushes, or on POST /admin/index/compact."""
    from service.compaction import IndexCompactor

    settings = _settings(data_dir)
    try:
        engine, switcher = _offline_switcher(settings)
        try:
            compactor = IndexCompactor(engine, switcher, drain_s=0.0)
            status = compactor.compact("requested")
            compactor.stop()
        finally:
            engine.close()
    except IncidentSimError as exc:
        _fail(exc)
    if status.state == "skipped":
        typer.echo(status.error)
        return
    typer.echo(f"compacted {status.source_index_version} into {status.index_version}: {status.incidents} incidents, "
               f"optimized in {status.optimize_seconds or 0:.1f} s, {status.total_seconds or 0:.1f} s in all")


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    dev: Annotated[bool, typer.Option("--dev", help="Dev mode: placeholder API keys allowed; with no keys at "
                                                    "all, authentication is off. Never in production.")] = False,
) -> None:
    """Serve POST /similar, the /incidents pushes, /healthz, /readyz and /metrics (API docs at /docs).
    Refuses to start without a valid bundle or with unsafe API keys (set INCIDENT_SIM_API_KEYS).
    On SIGTERM/SIGINT it stops accepting connections and lets in-flight requests finish."""
    settings = _settings(data_dir, service=True)
    updates = {k: v for k, v in {"host": host, "port": port, "dev_mode": dev or None}.items() if v is not None}
    settings = settings.model_copy(update=updates)
    import uvicorn

    from service.app import create_app
    from service.engine import Engine

    try:
        engine = Engine.from_settings(settings)
        try:
            api = create_app(settings, engine)
        except IncidentSimError:
            engine.close()
            raise
    except IncidentSimError as exc:
        _fail(exc)
    uvicorn.run(api, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=False, log_config=None, timeout_graceful_shutdown=int(settings.graceful_shutdown_s))


@app.command()
def quickstart(
    data_dir: DataDir = None,
    n: Annotated[int, typer.Option(help="Sample incidents to generate and index.")] = 5000,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """End to end on the embedded defaults: build the baseline bundle (once), generate and index sample
    incidents (idempotent), then serve. Without INCIDENT_SIM_API_KEYS it serves in dev mode (auth off)."""
    settings = _settings(data_dir)
    from indexing.bundle import find_latest_bundle

    if settings.bundle_path is None and find_latest_bundle(settings.bundles_dir) is None:
        bundle_baseline(data_dir=settings.data_dir)
    sample_file = settings.data_dir / "sample_incidents.json"
    if not sample_file.exists():
        sample(out=sample_file, n=n)
    index(input=sample_file, data_dir=settings.data_dir)
    if not settings.api_keys:
        logger.warning("no INCIDENT_SIM_API_KEYS set: serving in dev mode, authentication OFF")
    serve(data_dir=settings.data_dir, host=host, port=port, dev=not settings.api_keys)


if __name__ == "__main__":
    app()
