"""Data and index commands: generate sample incidents, index incidents into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from indexing.errors import IncidentSimError
from service.cli.common import DataDir, app, fail, load_settings, setup_logging, timed


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Where to write the incidents (ServiceNow Table API JSON).")] = Path(
        "var/sample_incidents.json"),
    n: Annotated[int, typer.Option(min=1, help="How many incidents.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same incidents).")] = 7,
) -> None:
    """Generate ServiceNow-shaped sample incidents with ground-truth problem/duplicate links."""
    setup_logging("INFO")
    from training.data.sample import generate_incidents, write_incidents

    path = write_incidents(generate_incidents(n, seed=seed), out)
    typer.echo(f"wrote {n} incidents to {path}")


@app.command()
@timed("index")
def index(
    input: Annotated[Path, typer.Option("--input", "-i", help="Incidents: .csv, .json ({'result': [...]}) or .jsonl")],
    data_dir: DataDir = None,
    page_size: Annotated[int, typer.Option(
        "--page-size", "--batch-size", min=1, max=4096,
        help="Incidents encoded and written together; sorted by token length within a page, ONNX Runtime runs "
             "sized by INCIDENT_SIM_ENCODER_TOKEN_BUDGET.")] = 256,
    new_version: Annotated[bool, typer.Option(
        "--new-version", help="Build a fresh index version from this file alone and make it serve, even where "
                              "index versions exist but their pointer is lost (they are kept, not merged: "
                              "incidents only they hold stop serving). Without it, a lost pointer is refused.")]
    = False,
) -> None:
    """Encode incidents and upsert them (dense + BM25 sparse vectors + fields) into the serving index version,
    or into a first one. Point ids derive from the incident number, so re-running is idempotent. Refuses a data
    directory a running service holds (push through its API instead) and one whose index pointer is lost
    (`incident-sim models recover`)."""
    settings = load_settings(data_dir)
    from indexing.bundle import load_bundle
    from indexing.incidents import load_incidents
    from indexing.indexer import index_into_catalog
    from service.versions.serving import EncoderOptions
    from service.wiring import open_catalog, resolve_bundle_path, serving_bundle_path

    try:
        incidents = load_incidents(input)
        catalog = open_catalog(settings)
        try:
            path = resolve_bundle_path(settings) if new_version else serving_bundle_path(settings, catalog)
            bundle = load_bundle(path)
            encoder = EncoderOptions.from_settings(settings).encoder_for(bundle)
            meta, count = index_into_catalog(incidents, bundle, encoder, catalog, page_size=page_size,
                                             new_version=new_version)
        finally:
            catalog.close()
    except IncidentSimError as exc:
        fail(exc)
    typer.echo(f"index {meta.index_version}: {count} incidents")


sync_app = typer.Typer(help="Pull incidents from a system of record into the index.", no_args_is_help=True)
app.add_typer(sync_app, name="sync")


@sync_app.command("servicenow")
@timed("sync servicenow")
def sync_servicenow(
    instance: Annotated[str | None, typer.Option(
        help="Instance URL (default: $INCIDENT_SIM_SERVICENOW_INSTANCE), e.g. https://acme.service-now.com.")] = None,
    service: Annotated[str | None, typer.Option(
        help="Write through this running service's API (POST /incidents/bulk) with INCIDENT_SIM_SYNC_API_KEY "
             "instead of into the data directory (default: $INCIDENT_SIM_SYNC_SERVICE_URL).")] = None,
    page_size: Annotated[int | None, typer.Option(min=1, max=10_000, help="Incidents per Table API page.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Forget the saved cursor and read every incident again "
                                                      "(unchanged ones are rewritten).")] = False,
    deletes: Annotated[bool, typer.Option(help="Also apply deletions from sys_audit_delete.")] = True,
    data_dir: DataDir = None,
) -> None:
    """Bulk and incremental sync from the ServiceNow Table API: incidents changed since the last run (all of them
    the first time) are written through the engine's write path, deletions applied; resumable after an
    interruption. Credentials: INCIDENT_SIM_SERVICENOW_USER/_PASSWORD or _TOKEN (never logged). Offline mode
    needs the service stopped (the embedded index admits one process); --service syncs into a running one."""
    settings = load_settings(data_dir)
    from indexing.servicenow import TableApiClient
    from service.servicenow_sync import EngineSink, IncidentSink, ServiceApiSink, state_path
    from service.servicenow_sync import sync_servicenow as run_sync

    instance = instance or settings.servicenow_instance
    service = service or settings.sync_service_url
    if not instance:
        fail(IncidentSimError("no instance: give --instance or set INCIDENT_SIM_SERVICENOW_INSTANCE"))
    secret = settings.servicenow_password or None
    token = settings.servicenow_token or None
    try:
        client = TableApiClient(instance, user=settings.servicenow_user,
                                password=secret.get_secret_value() if secret else None,
                                token=token.get_secret_value() if token else None,
                                max_retries=settings.sync_max_retries)
        sink: IncidentSink
        if service:
            if settings.sync_api_key is None:
                raise IncidentSimError("--service needs INCIDENT_SIM_SYNC_API_KEY (a key with the write scope)")
            sink = ServiceApiSink(service, settings.sync_api_key.get_secret_value(),
                                  max_bulk=settings.max_bulk_incidents)
        else:
            sink = EngineSink(settings)
        state = state_path(settings.data_dir, instance)
        if full and state.exists():
            state.unlink()
        try:
            summary = run_sync(client, sink, state, page_size=page_size or settings.sync_page_size,
                               overlap_s=settings.sync_overlap_s, deletes=deletes)
        finally:
            sink.close()
            client.close()
    except IncidentSimError as exc:
        fail(exc)
    for problem in summary.invalid[:20]:
        typer.secho(f"invalid: {problem}", fg=typer.colors.YELLOW, err=True)
    if len(summary.invalid) > 20:
        typer.secho(f"... and {len(summary.invalid) - 20} more invalid rows (see the log)", fg=typer.colors.YELLOW,
                    err=True)
    typer.echo(f"synced {instance}: {summary.line()}")
