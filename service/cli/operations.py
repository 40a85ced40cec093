"""Serving and operations commands: serve, quickstart, doctor."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from indexing import steps
from indexing.errors import IncidentSimError
from service.cli.common import DataDir, app, fail, load_settings, setup_logging
from service.settings import Settings

if TYPE_CHECKING:
    from indexing.incidents import Incident

logger = logging.getLogger(__name__)


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
    settings = load_settings(data_dir, service=True)
    run_service(settings, host, port, dev)


def run_service(settings: Settings, host: str | None, port: int | None, dev: bool,
                backlog: Sequence[Incident] = (), started_at: float | None = None,
                calibrate_on: Sequence[Incident] = ()) -> None:
    """Serve until stopped; `backlog`: incidents to index in the background meanwhile (service/background_indexing);
    `calibrate_on`: labelled incidents to calibrate an uncalibrated serving threshold on meanwhile
    (service/flag/background_calibration)."""
    updates = {k: v for k, v in {"host": host, "port": port, "dev_mode": dev or None}.items() if v is not None}
    settings = settings.model_copy(update=updates)
    import uvicorn

    from indexing.bundle import CALIBRATED
    from service.app import create_app
    from service.background_indexing import BackgroundIndexer
    from service.engine import Engine
    from service.flag.background_calibration import BackgroundCalibration

    try:
        engine = Engine.from_settings(settings)
        try:
            indexer = BackgroundIndexer(engine, backlog, started_at=started_at) if backlog else None
            calibration = None
            if calibrate_on and engine.bundle.threshold_source != CALIBRATED:
                if settings.bundle_path is not None:  # a pin wins over every switch, so a switch would not last
                    logger.warning("INCIDENT_SIM_BUNDLE_PATH pins the uncalibrated bundle, so the quickstart does not "
                                   "calibrate it: every `similar` stays null (incident-sim calibrate, or unset it)")
                else:
                    calibration = BackgroundCalibration(engine, calibrate_on, settings.data_dir)
            api = create_app(settings, engine, background_indexing=indexer, background_calibration=calibration)
        except IncidentSimError:
            engine.close()
            raise
    except IncidentSimError as exc:
        fail(exc)
    uvicorn.run(api, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=False, log_config=None, timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
                http="h11", timeout_keep_alive=settings.keep_alive_timeout_s,
                h11_max_incomplete_event_size=settings.max_header_bytes)  # README "Security"


@app.command()
def quickstart(
    data_dir: DataDir = None,
    n: Annotated[int, typer.Option(min=1, help="Sample incidents to generate and index.")] = 5000,
    first: Annotated[int, typer.Option(
        min=1, help="Incidents indexed before serving starts; the rest are indexed in the background while the "
                    "service answers (answers and /readyz say so until it is done).")] = 500,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    search_int8: Annotated[bool, typer.Option(
        "--search-int8", help="Run the full INT8 recipe search even when an outcome is recorded for this model and "
                              "CPU (training/int8_recipes.py).")] = False,
    started_at: Annotated[float | None, typer.Option(
        envvar="INCIDENT_SIM_QUICKSTART_STARTED", hidden=True,
        help="Epoch seconds the quickstart started (deploy/quickstart.sh passes it, so totals include the install).")]
    = None,
) -> None:
    """End to end on the embedded defaults: build the baseline bundle (once), generate sample incidents, index
    the first ones, then serve while the rest are indexed in the background through the service's own write
    path. Meanwhile the threshold is calibrated on the sample's train + validation splits and switched to when
    done (answers carry `similar: null` until then; /readyz shows `calibration`). Idempotent: a second run indexes
    only what is missing and serves the calibrated bundle. Without INCIDENT_SIM_API_KEYS it serves in dev mode
    (auth off)."""
    started = started_at or time.time()
    settings = load_settings(data_dir, service=False)
    try:
        with steps.run("quickstart until the first answer"):
            _ensure_bundle(settings, search_int8)
            incidents = _sample_incidents(settings, n)
            backlog = _index_first(settings, incidents, first)
    except IncidentSimError as exc:
        fail(exc)
    logger.info("ready to serve %s after the quickstart started; %d of %d sample incidents still to index",
                steps.format_seconds(time.time() - started), len(backlog), len(incidents))
    if not settings.api_keys:
        logger.warning("no INCIDENT_SIM_API_KEYS set: serving in dev mode, authentication OFF")
    run_service(load_settings(data_dir, service=True), host, port, not settings.api_keys, backlog=backlog,
                started_at=started, calibrate_on=incidents)


def _ensure_bundle(settings: Settings, search_int8: bool) -> None:
    from indexing.bundle import find_latest_bundle

    if settings.bundle_path is not None or find_latest_bundle(settings.bundles_dir) is not None:
        logger.info("using the existing bundle (%s)", settings.bundle_path or settings.bundles_dir)
        return
    from training.bundle_writer import build_baseline_bundle

    with steps.step("build the baseline bundle"):
        path = build_baseline_bundle(settings.bundles_dir, search_int8=search_int8)
    logger.info("bundle %s", path)


def _sample_incidents(settings: Settings, n: int) -> list[Incident]:
    from indexing.incidents import load_incidents
    from training.data.sample import generate_incidents, write_incidents

    sample_file = settings.data_dir / "sample_incidents.json"
    if not sample_file.exists():
        with steps.step(f"generate {n} sample incidents"):
            write_incidents(generate_incidents(n, seed=7), sample_file)
    return load_incidents(sample_file)


def _index_first(settings: Settings, incidents: list[Incident], first: int) -> list[Incident]:
    """Index the first `first` incidents the store lacks; return the ones still missing after that."""
    from indexing.bundle import load_bundle
    from indexing.indexer import index_into_catalog, missing_incidents
    from service.versions.serving import EncoderOptions
    from service.wiring import open_catalog, serving_bundle_path

    catalog = open_catalog(settings)
    try:
        active = catalog.active()
        missing = list(incidents)
        if active is not None:
            with steps.step("check which sample incidents are already indexed"):
                store = catalog.open(active)
                try:
                    missing = missing_incidents(store, incidents)
                finally:
                    store.close()
            logger.info("%d of %d sample incidents already indexed", len(incidents) - len(missing), len(incidents))
        if not missing:
            return []
        bundle = load_bundle(serving_bundle_path(settings, catalog))
        encoder = EncoderOptions.from_settings(settings).encoder_for(bundle)
        head = missing[:first]
        with steps.step(f"index the first {len(head)} sample incidents"):
            index_into_catalog(head, bundle, encoder, catalog, avgdl_corpus=incidents)
        return missing[len(head):]
    finally:
        catalog.close()


@app.command()
def doctor(data_dir: DataDir = None) -> None:
    """Check the environment and the data directory: Python, the installed extras, the model packages, the
    bundle's checksums, the registry pointer, the index's version and count, the CPU features that matter for
    INT8, free disk. Says what to fix; exit status 1 when a check fails (warnings alone exit 0)."""
    settings = load_settings(data_dir)
    setup_logging("WARNING")  # the findings are the output; INFO lines of the modules it opens are noise here
    from service.doctor import FAIL, OK, WARN, run_checks

    findings = run_checks(settings)
    colours = {OK: typer.colors.GREEN, WARN: typer.colors.YELLOW, FAIL: typer.colors.RED}
    width = max(len(f.check) for f in findings)
    for finding in findings:
        typer.secho(f"{finding.status.upper():<4}", fg=colours[finding.status], nl=False)
        typer.echo(f"  {finding.check:<{width}}  {finding.detail}")
        if finding.fix and finding.status != OK:
            typer.echo(f"      {'':<{width}}  fix: {finding.fix}")
    failed = [f for f in findings if f.status == FAIL]
    warned = [f for f in findings if f.status == WARN]
    typer.echo(f"{len(findings)} checks: {len(failed)} failed, {len(warned)} warnings (data directory "
               f"{settings.data_dir})")
    if failed:
        raise typer.Exit(code=1)
