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
    batch_size: Annotated[int, typer.Option(min=1, max=1024, help="Incidents encoded per batch.")] = 64,
) -> None:
    """Encode incidents and upsert them (dense + BM25 sparse vectors + fields) into the store.
    Point ids derive from the incident number, so re-running is idempotent."""
    settings = load_settings(data_dir)
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
        fail(exc)
    typer.echo(f"index {meta.index_version}: {count} incidents")
