"""One place that builds the engine and the index-version lifecycle from Settings: the app, the CLI and the
benchmarks all call these (no second copy of the wiring that could disagree)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from indexing.bundle import load_bundle
from indexing.errors import BundleError, IndexLockedError, IndexMissingError, PointerLostError, StoreUnavailableError
from indexing.registry import BundleRegistry
from indexing.store.base import IncidentStore, IndexCatalog, IndexMeta
from indexing.store.unavailable import UnavailableStore
from service.engine import Engine, EngineOptions
from service.metrics import Metrics
from service.settings import Settings
from service.versions.compaction import CompactionPolicy, IndexCompactor
from service.versions.switcher import ModelSwitcher, SwitcherOptions

logger = logging.getLogger(__name__)


def resolve_bundle_path(settings: Settings, index_meta: IndexMeta | None = None,
                        pointer_model: str | None = None) -> Path:
    """The bundle to serve: INCIDENT_SIM_BUNDLE_PATH, else the bundle the index pointer names with the active
    version (`pointer_model`: the commit point of every switch, so model and index always belong together),
    else (a pointer from before it named its bundle, or no index yet) the registry's active bundle when it can
    query the active index, else the bundle that built the active index."""
    if settings.bundle_path is not None:
        return Path(settings.bundle_path)
    registry = BundleRegistry(settings.bundles_dir)
    if pointer_model:
        try:
            return registry.path_of(pointer_model)
        except BundleError as exc:
            logger.error("the index pointer names bundle %s, which the registry cannot give (%s); falling back to "
                         "the registry's active bundle", pointer_model, exc)
    active = registry.active_path()
    if active is None:
        raise BundleError(f"no model bundle under {settings.bundles_dir}; build one with "
                          "`incident-sim bundle baseline` or set INCIDENT_SIM_BUNDLE_PATH")
    if index_meta is not None:
        candidate = load_bundle(active, verify=False)
        if candidate.encoder_id != index_meta.encoder_id:
            try:
                built_by = registry.path_of(index_meta.model_version)
            except BundleError:
                return active
            logger.warning("registry names %s but the active index was built by %s; serving %s (activate %s to "
                           "re-index)", candidate.model_version, index_meta.model_version, index_meta.model_version,
                           candidate.model_version)
            return built_by
    return active


def open_catalog(settings: Settings, read_only: bool = False, serving: bool = False) -> IndexCatalog:
    """The index catalog the settings name. Opened for writing (the default) the embedded one first takes the
    index directory's lock (IndexLockedError naming the holder): nothing on disk is touched before that.
    `read_only` (doctor): no lock, no shard ever opened, nothing changed. `serving` (the service): versions it
    opens are read into the page cache in the background (`index_warm_on_open`)."""
    if settings.qdrant_url:
        from indexing.store.server import CollectionLayout, ServerCatalog

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        layout = CollectionLayout(shards=settings.qdrant_shards, replication_factor=settings.qdrant_replication_factor,
                                  write_consistency=settings.qdrant_write_consistency)
        return ServerCatalog(settings.qdrant_url, settings.collection, api_key=key, timeout=settings.qdrant_timeout_s,
                             layout=layout)
    from indexing.store.edge import GraphConfig
    from indexing.store.edge_catalog import EdgeCatalog

    return EdgeCatalog(settings.edge_index_dir, graph=GraphConfig(m=settings.hnsw_m,
                                                                  ef_construct=settings.hnsw_ef_construct,
                                                                  int8=settings.index_int8,
                                                                  vectors_on_disk=settings.index_vectors_on_disk),
                       read_only=read_only, min_free_bytes=settings.min_free_disk_mb * 2**20,
                       warm_on_open=serving and settings.index_warm_on_open)


def serving_bundle_path(settings: Settings, catalog: IndexCatalog) -> Path:
    """The bundle that serves with the catalog's active version (PointerLostError when the pointer is lost)."""
    if catalog.active() is None:
        return resolve_bundle_path(settings)
    return resolve_bundle_path(settings, active_index_meta(catalog), catalog.active_model())


def active_index_meta(catalog: IndexCatalog) -> IndexMeta | None:
    """The active version's metadata; read without loading its shard where the catalog can (Qdrant Edge)."""
    active = catalog.active()
    return None if active is None else catalog.meta_of_version(active)


def build_engine(settings: Settings) -> Engine:
    """Take the index directory's lock (IndexLockedError, naming the holder: a refused process changes nothing
    on disk), load and verify the bundle the index pointer names (BundleError: the service must not start
    without one), attach the active index version and remove versions a cut-short rebuild left behind. An
    unreachable store or a lost pointer is tolerated here: readiness reports it and writes are refused."""
    index_name: str | None = None
    store: IncidentStore
    meta: IndexMeta | None = None
    pointer_model: str | None = None
    catalog = open_catalog(settings, serving=True)
    try:
        index_name = catalog.active()
        for name in catalog.clean_incomplete():
            logger.warning("removed index version %s: its rebuild never finished", name)
        if index_name is None:
            store = UnavailableStore("the incident index does not exist yet; run `incident-sim index`",
                                     IndexMissingError)
        else:
            pointer_model = catalog.active_model()
            store = catalog.open(index_name)
            meta = store.meta()
    except PointerLostError as exc:
        logger.error("%s", exc)
        store = UnavailableStore(str(exc), PointerLostError)
    except IndexLockedError:
        catalog.close()
        raise
    except StoreUnavailableError as exc:
        logger.error("store unavailable at start-up: %s", exc)
        store = UnavailableStore(str(exc))
    registry = BundleRegistry(settings.bundles_dir)
    try:
        for name in registry.clean_staging():
            logger.warning("removed %s from the bundle registry: a bundle write or publish never finished", name)
        bundle = load_bundle(resolve_bundle_path(settings, meta, pointer_model))
        if settings.bundle_path is None and pointer_model == bundle.model_version and \
                registry.active_version() != pointer_model:
            logger.warning("the registry pointer names %s but the index pointer (the commit point) names %s: a "
                           "switch was cut short between the two; the registry pointer follows",
                           registry.active_version(), pointer_model)
            registry.set_active(pointer_model)
        options = EngineOptions.from_settings(settings)
        encoder = options.encoders.encoder_for(bundle)
    except BaseException:
        store.close()
        catalog.close()
        raise
    engine = Engine(bundle, encoder, store, index_name=index_name, catalog=catalog, registry=registry,
                    options=options)
    try:
        engine.searcher()  # checks index/model agreement early when the store is up
    except StoreUnavailableError as exc:
        logger.error("store not ready at start-up: %s", exc)
    return engine


def build_switcher(settings: Settings, engine: Engine, metrics: Metrics | None = None) -> ModelSwitcher | None:
    """The model switcher (rebuild, switch, rollback) of `engine`; None without a catalog (store unreachable)."""
    if engine.catalog is None or engine.registry is None:
        return None
    return ModelSwitcher(engine, metrics, SwitcherOptions.from_settings(settings))


def build_compactor(settings: Settings, engine: Engine, switcher: ModelSwitcher, metrics: Metrics | None = None,
                    postpone: Callable[[], str | None] | None = None, drain_s: float | None = None) -> IndexCompactor:
    policy = CompactionPolicy(after_writes=settings.compact_after_writes, idle_writes=settings.compact_idle_writes,
                              idle_s=settings.compact_idle_s)
    return IndexCompactor(engine, switcher, metrics, policy=policy,
                          drain_s=settings.compact_drain_s if drain_s is None else drain_s, postpone=postpone)
