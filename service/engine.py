"""The retrieval engine: bundle + encoder + store + hybrid search, with no HTTP in sight.
Routes, tests and benchmarks all call `Engine.similar`."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from indexing.batcher import BatchingEncoder
from indexing.bundle import Bundle, load_bundle
from indexing.dense_text import TextEncoder
from indexing.encoder import OnnxEncoder, TokenCappedEncoder
from indexing.errors import (
    BundleError,
    IncidentNotFoundError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    InvalidQueryError,
    StoreUnavailableError,
)
from indexing.incidents import Incident, check_incident, incident_text, point_id_for
from indexing.indexer import bm25_encoder_for, build_points, check_index_matches
from indexing.query_cache import CachedQueryEncoder
from indexing.registry import BundleRegistry
from indexing.search import DEFAULT_TOP_K, HybridSearcher, ScoredIncident
from indexing.store.base import IncidentFilter, IncidentStore, IndexCatalog, IndexMeta, rebuild_in_progress
from service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimilarQuery:
    text: str  # what BM25 reads (and the full text the encoder reads)
    top_k: int = DEFAULT_TOP_K
    where: IncidentFilter | None = None
    short_description: str | None = None  # the fields as sent: the bundle's dense text mode may read them apart
    description: str | None = None  # (neither given: `text` is free text, its own summary)


@dataclass(frozen=True)
class WriteOutcome:
    number: str
    created: bool  # False: an existing incident was replaced
    truncated: bool
    model_version: str  # the serving version the write went to (model and index belong together)
    index_version: str


@dataclass(frozen=True)
class StoredCopy:
    payload: dict[str, Any]
    model_version: str
    index_version: str


@dataclass(frozen=True)
class SimilarAnswer:
    results: list[ScoredIncident]
    threshold: float
    threshold_source: str
    threshold_target: dict[str, Any] | None  # what the threshold was calibrated for (unit, target, confidence)
    model_version: str
    index_version: str
    truncated: bool
    exact: bool
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def is_similar(self, result: ScoredIncident) -> bool:
        return result.score >= self.threshold


@dataclass(frozen=True)
class Readiness:
    ready: bool
    code: str  # ready | index_missing | index_locked | index_mismatch | store_unavailable | internal
    message: str


_NOT_READY: list[tuple[type[Exception], str, str]] = [
    (IndexLockedError, "index_locked", "the index is held by another process"),
    (IndexMismatchError, "index_mismatch", "the index was built by another model than the one loaded"),
    (IndexMissingError, "index_missing", "the incident index does not exist yet: index incidents first"),
    (StoreUnavailableError, "store_unavailable", "the incident store is unreachable or failing"),
]


def resolve_bundle_path(settings: Settings, index_meta: IndexMeta | None = None) -> Path:
    """The bundle to serve: INCIDENT_SIM_BUNDLE_PATH, else the registry's active bundle when it can query
    the active index, else the bundle that built the active index (a switch cut short between the index
    pointer and the registry pointer), else the registry's active bundle."""
    if settings.bundle_path is not None:
        return Path(settings.bundle_path)
    registry = BundleRegistry(settings.bundles_dir)
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


def open_catalog(settings: Settings) -> IndexCatalog:
    if settings.qdrant_url:
        from indexing.store.server import CollectionLayout, ServerCatalog

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        layout = CollectionLayout(shards=settings.qdrant_shards, replication_factor=settings.qdrant_replication_factor,
                                  write_consistency=settings.qdrant_write_consistency)
        return ServerCatalog(settings.qdrant_url, settings.collection, api_key=key, timeout=settings.qdrant_timeout_s,
                             layout=layout)
    from indexing.store.edge import EdgeCatalog, GraphConfig

    return EdgeCatalog(settings.edge_index_dir, graph=GraphConfig(m=settings.hnsw_m,
                                                                  ef_construct=settings.hnsw_ef_construct,
                                                                  int8=settings.index_int8))


def active_index_meta(catalog: IndexCatalog) -> IndexMeta | None:
    active = catalog.active()
    if active is None:
        return None
    store = catalog.open(active)
    try:
        return store.meta()
    finally:
        store.close()


class ServingVersion:
    """One model bundle and the index version built with it: what a request uses from start to end.
    Immutable except for its searcher, made (and checked against the index) on first use."""

    def __init__(self, bundle: Bundle, encoder: OnnxEncoder, store: IncidentStore, index_name: str | None,
                 candidate_k: int = 100) -> None:
        self.bundle = bundle
        self.encoder = encoder
        self.store = store
        self.index_name = index_name
        self.candidate_k = candidate_k
        self._searcher: HybridSearcher | None = None
        self._meta: IndexMeta | None = None
        self._lock = threading.Lock()
        self._batcher: BatchingEncoder | None = None
        self._query_encoder: TextEncoder | None = None

    def query_encoder(self, window_s: float, max_batch: int, cache_size: int,
                      max_tokens: int | None = None) -> tuple[TextEncoder, BatchingEncoder | None]:
        """The encoder for /similar queries and its batcher: a cache of recent query texts
        (indexing/query_cache.py; cache_size 0 = none) in front of a batcher that encodes concurrent queries
        together (indexing/batcher.py; max_batch 1 = none), in front of the encoder reading at most
        `max_tokens` tokens of a query (None: the model's limit)."""
        if self._query_encoder is None:
            with self._lock:
                if self._query_encoder is None:
                    encoder: TextEncoder = self.encoder
                    if max_tokens is not None and max_tokens < self.bundle.max_seq_length:
                        encoder = TokenCappedEncoder(self.encoder, max_tokens)
                    if max_batch > 1:
                        self._batcher = BatchingEncoder(encoder, window_s=window_s, max_batch=max_batch)
                        encoder = self._batcher
                    if cache_size > 0:
                        encoder = CachedQueryEncoder(encoder, size=cache_size)
                    self._query_encoder = encoder
        return self._query_encoder, self._batcher

    def close_batcher(self) -> None:
        if self._batcher is not None:
            self._batcher.close()

    def searcher(self) -> HybridSearcher:
        if self._searcher is None:
            with self._lock:
                if self._searcher is None:
                    meta = self.store.meta()
                    if meta is None:
                        raise IndexMissingError("the incident index does not exist yet; run `incident-sim index`")
                    check_index_matches(meta, self.bundle)
                    self._meta = meta
                    self._searcher = HybridSearcher(self.store, bm25_encoder_for(meta, self.bundle.max_query_terms),
                                                    self.bundle.dense_weight,
                                                    self.bundle.bm25_weight, candidate_k=self.candidate_k,
                                                    normalization=self.bundle.scoring.normalization)
        return self._searcher

    @property
    def index_version(self) -> str | None:
        if self._meta is None:
            try:
                meta = self.store.meta()
            except StoreUnavailableError:
                return None
            return meta.index_version if meta else None
        return self._meta.index_version

    def reset_searcher(self, candidate_k: int | None = None) -> None:
        with self._lock:
            if candidate_k is not None:
                self.candidate_k = candidate_k
            self._searcher = None


class Engine:
    """Answers queries and applies incident writes on the current ServingVersion. A model switch builds
    a new version beside it (writes go to both meanwhile) and replaces `current` in one assignment: a
    request that already holds the old version finishes on it, so its model and index always match."""

    def __init__(self, bundle: Bundle, encoder: OnnxEncoder, store: IncidentStore, candidate_k: int = 100,
                 max_text_chars: int = 20_000, max_top_k: int = 50, index_name: str | None = None,
                 catalog: IndexCatalog | None = None, registry: BundleRegistry | None = None,
                 encode_window_s: float = 0.002, encode_max_batch: int = 1, query_cache_size: int = 1024,
                 max_query_tokens: int | None = None, follow_interval_s: float = 2.0, encoder_threads: int = 0,
                 encoder_spinning: bool = False) -> None:
        self.current = ServingVersion(bundle, encoder, store, index_name, candidate_k)
        # replicas sharing a catalog (Qdrant server): how stale a read may be about another replica's switch
        self.follow_interval_s = follow_interval_s
        self.encoder_threads = encoder_threads
        self.encoder_spinning = encoder_spinning
        self._followed_at = float("-inf")
        self.replica_id = uuid.uuid4().hex  # names this replica's own rebuild in the shared control record
        self.encode_window_s = encode_window_s
        self.encode_max_batch = encode_max_batch
        self.query_cache_size = query_cache_size
        self.max_query_tokens = max_query_tokens  # None: the model's own limit
        self.max_text_chars = max_text_chars
        self.max_top_k = max_top_k
        self.catalog = catalog
        self.registry = registry
        self.rebuild_target: ServingVersion | None = None
        self.write_lock = threading.RLock()  # orders incident writes against re-index pages and the switch
        self.retired: list[ServingVersion] = []
        # versions replaced by a compaction, with when: requests may still read them until the drain time
        # has passed, so they stay open and on disk until then (retention leaves them alone)
        self.draining: list[tuple[float, ServingVersion]] = []
        # incident writes since the current version was built (the compaction policy reads it), when the last
        # one was made, and while a copy of the current version is being made, the point ids written meanwhile
        self.writes_since_build = 0
        self.last_write_at = time.monotonic()
        self.write_journal: set[str] | None = None
        self._last_not_ready: tuple[str, str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        """Load and verify the bundle (raises BundleError: the service must not start without one) and
        attach the active index version, removing versions a cut-short rebuild left behind. An unreachable
        store is tolerated here: readiness reports it."""
        catalog: IndexCatalog | None = None
        index_name: str | None = None
        store: IncidentStore
        meta: IndexMeta | None = None
        try:
            catalog = open_catalog(settings)
            for name in catalog.clean_incomplete():
                logger.warning("removed index version %s: its rebuild never finished", name)
            index_name = catalog.active()
            if index_name is None:
                store = _UnavailableStore("the incident index does not exist yet; run `incident-sim index`",
                                          IndexMissingError)
            else:
                store = catalog.open(index_name)
                meta = store.meta()
        except StoreUnavailableError as exc:
            logger.error("store unavailable at start-up: %s", exc)
            store = _UnavailableStore(str(exc))
        for name in BundleRegistry(settings.bundles_dir).clean_staging():
            logger.warning("removed %s from the bundle registry: a bundle write or publish never finished", name)
        bundle = load_bundle(resolve_bundle_path(settings, meta))
        encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length,
                              intra_op_threads=settings.encoder_threads, allow_spinning=settings.encoder_spinning)
        engine = cls(bundle, encoder, store, candidate_k=settings.candidate_k, max_text_chars=settings.max_text_chars,
                     max_top_k=settings.max_top_k, index_name=index_name, catalog=catalog,
                     registry=BundleRegistry(settings.bundles_dir), encode_window_s=settings.encode_window_ms / 1000,
                     encode_max_batch=settings.encode_max_batch, query_cache_size=settings.query_cache_size,
                     max_query_tokens=settings.max_query_tokens, follow_interval_s=settings.replica_follow_s,
                     encoder_threads=settings.encoder_threads, encoder_spinning=settings.encoder_spinning)
        try:
            engine.searcher()  # checks index/model agreement early when the store is up
        except StoreUnavailableError as exc:
            logger.error("store not ready at start-up: %s", exc)
        return engine

    # the current version's parts (what /readyz, /metrics and the tests look at)
    @property
    def bundle(self) -> Bundle:
        return self.current.bundle

    @property
    def encoder(self) -> OnnxEncoder:
        return self.current.encoder

    @property
    def store(self) -> IncidentStore:
        return self.current.store

    @property
    def index_version(self) -> str | None:
        return self.current.index_version

    def searcher(self) -> HybridSearcher:
        return self.current.searcher()

    def reset_searcher(self, candidate_k: int | None = None) -> None:
        self.current.reset_searcher(candidate_k)

    def readiness(self) -> Readiness:
        """Ready or not, with a reason code and a short message free of paths and URLs (the probe is open);
        the detail goes to the log, once per change of reason."""
        try:
            self.store.ping()
            self.searcher()
        except Exception as exc:  # readiness never raises: any failure means not ready
            code, message = next(((c, m) for kind, c, m in _NOT_READY if isinstance(exc, kind)),
                                 ("internal", "the engine failed its readiness check; see the service log"))
            if self._last_not_ready != (code, str(exc)):
                logger.error("not ready (%s): %s", code, exc)
                self._last_not_ready = (code, str(exc))
            return Readiness(False, code, message)
        self._last_not_ready = None
        return Readiness(True, "ready", "bundle loaded, index reachable")

    def swap(self, target: ServingVersion) -> ServingVersion:
        """Make `target` current (call with write_lock held); returns the version it replaced."""
        old, self.current = self.current, target
        self.retired.append(old)
        return old

    def build_query(self, short_description: str | None, description: str | None, text: str | None,
                    top_k: int, exclude: Sequence[str] = (), fields: Mapping[str, Sequence[str]] | None = None,
                    opened_after: datetime | None = None, opened_before: datetime | None = None) -> SimilarQuery:
        """Check a request against the engine's limits and turn it into a query (InvalidQueryError says what
        to fix). `fields`, the opened_at window and `exclude` become a store-side filter."""
        if text is not None and (short_description is not None or description is not None):
            raise InvalidQueryError("give either 'text' or 'short_description'/'description', not both")
        for name, value in (("short_description", short_description), ("description", description),
                            ("text", text)):
            if value is not None and len(value) > self.max_text_chars:
                raise InvalidQueryError(f"{name} is {len(value)} characters; the limit is {self.max_text_chars}")
        if not 1 <= top_k <= self.max_top_k:
            raise InvalidQueryError(f"top_k must be between 1 and {self.max_top_k}")
        query = query_text(short_description, description, text)
        if not query:
            raise InvalidQueryError(
                "the incident text is empty: send a non-blank short_description, description or text")
        if opened_after and opened_before and _comparable(opened_after) >= _comparable(opened_before):
            raise InvalidQueryError("filters.opened_after must be earlier than filters.opened_before")
        where = IncidentFilter(
            fields={k: tuple(v) for k, v in (fields or {}).items() if v},
            opened_after=opened_after, opened_before=opened_before,
            exclude_ids=tuple(sorted({point_id_for(n) for n in exclude})))
        return SimilarQuery(text=query, top_k=top_k, where=None if where.empty else where,
                            short_description=short_description, description=description)

    def similar(self, query: SimilarQuery) -> SimilarAnswer:
        self.follow_replicas(strict=False)
        version = self.current  # one read: this request uses this model and this index to the end
        searcher = version.searcher()
        t0 = time.perf_counter()
        free_text = query.short_description is None and query.description is None
        encoder, batcher = version.query_encoder(self.encode_window_s, self.encode_max_batch, self.query_cache_size,
                                                 self.max_query_tokens)
        with batcher.request() if batcher is not None else contextlib.nullcontext():
            vector, truncated = version.bundle.dense_text.embed_one(
                encoder, query.short_description, query.description, query.text if free_text else None)
        encode_s = time.perf_counter() - t0
        outcome = searcher.search(vector, query.text, query.top_k, query.where)
        return SimilarAnswer(
            results=outcome.results,
            threshold=version.bundle.threshold,
            threshold_source=version.bundle.threshold_source,
            threshold_target=version.bundle.threshold_target,
            model_version=version.bundle.model_version,
            index_version=str(version.index_version),
            truncated=truncated,
            exact=outcome.certified,
            stage_seconds={"encode": encode_s, **outcome.stage_seconds},
        )

    # -- incident writes (ServiceNow pushes) ----------------------------------------------------
    def check_incident(self, incident: Incident) -> None:
        check_incident(incident, self.max_text_chars)

    def upsert_incidents(self, incidents: Sequence[Incident]) -> list[WriteOutcome]:
        """Encode and store (create or replace) incidents; searchable once this returns. Check each with
        `check_incident` first: nothing is written unless encoding succeeded for the whole batch. During a
        rebuild the incidents are written to the version being built as well (with its own model)."""
        if not incidents:
            return []
        with self.write_lock:
            self.follow_replicas(strict=True)  # another replica's rebuild: write to its new version too
            versions = [v for v in (self.current, self.rebuild_target) if v is not None]
            current = versions[0]
            existing = {s.point_id for s in current.store.fetch([i.point_id for i in incidents], with_vectors=False)}
            truncated: tuple[bool, ...] = ()
            for version in versions:
                points, cut = build_points(incidents, version.encoder, version.searcher().bm25,
                                           dense_text=version.bundle.dense_text, batch_size=32)
                version.store.upsert(points)
                truncated = truncated or cut
            self._record_writes([i.point_id for i in incidents])
        model, index = current.bundle.model_version, str(current.index_version)
        return [WriteOutcome(i.number, i.point_id not in existing, cut, model, index)
                for i, cut in zip(incidents, truncated, strict=True)]

    def get_incident(self, number: str) -> StoredCopy:
        self.follow_replicas(strict=False)
        version = self.current  # one read: the copy, its model and its index come from one version
        version.searcher()
        found = version.store.fetch([point_id_for(number)], with_vectors=False)
        if not found:
            raise IncidentNotFoundError(f"no incident {number} in index {version.index_version}")
        return StoredCopy(found[0].payload, version.bundle.model_version, str(version.index_version))

    def delete_incident(self, number: str) -> None:
        with self.write_lock:
            self.follow_replicas(strict=True)
            self.get_incident(number)
            for version in (self.current, self.rebuild_target):
                if version is not None:
                    version.store.delete([point_id_for(number)])
            self._record_writes([point_id_for(number)])

    # -- several replicas on one Qdrant cluster --------------------------------------------------
    def follow_replicas(self, strict: bool) -> None:
        """Follow a rebuild or switch another replica made on the shared catalog (a no-op for one process). A
        rebuild elsewhere: open its new version so this replica's writes go to both (every write checks:
        `strict`). The index alias moved elsewhere: swap to that version and its bundle. Reads check at most every
        `follow_interval_s` seconds, so an answer uses the old model for at most that long after a switch."""
        catalog = self.catalog
        if catalog is None or not catalog.shared:
            return
        if not strict and time.monotonic() - self._followed_at < self.follow_interval_s:
            return
        with self.write_lock:
            self._followed_at = time.monotonic()
            try:
                control = catalog.control()
                active = catalog.active()
            except StoreUnavailableError:
                if strict:
                    raise
                return
            building = rebuild_in_progress(control)
            ours = self.rebuild_target
            if control.get("owner") == self.replica_id:
                return  # our own rebuild: the switcher of this engine keeps its state
            if active is not None and active != self.current.index_name:
                target = ours if ours is not None and ours.index_name == active else self._open_version(active)
                logger.info("another replica switched to index %s (model %s): following", active,
                            target.bundle.model_version)
                self.swap(target)
                self.rebuild_target = None
                ours = None
            if building and building != active and (ours is None or ours.index_name != building):
                self.rebuild_target = self._open_version(building, str(control.get("model_version") or ""))
                logger.info("another replica is rebuilding index %s for model %s: writes go to it as well",
                            building, self.rebuild_target.bundle.model_version)
            elif not building and ours is not None:
                logger.info("the rebuild of %s ended elsewhere without a switch: writes go to %s only",
                            ours.index_name, self.current.index_name)
                self.rebuild_target = None

    def _open_version(self, name: str, model_version: str = "") -> ServingVersion:
        assert self.catalog is not None and self.registry is not None
        model_version = model_version or self.catalog.model_of(name)
        bundle = load_bundle(self.registry.path_of(model_version))
        encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length,
                              intra_op_threads=self.encoder_threads, allow_spinning=self.encoder_spinning)
        return ServingVersion(bundle, encoder, self.catalog.open(name), name, self.current.candidate_k)

    def _record_writes(self, point_ids: Sequence[str]) -> None:
        """Count applied writes (call with write_lock held, after the stores took them)."""
        self.writes_since_build += len(point_ids)
        self.last_write_at = time.monotonic()
        if self.write_journal is not None:
            self.write_journal.update(point_ids)

    def close(self) -> None:
        draining = [v for _, v in self.draining]
        for version in {id(v): v for v in (self.current, self.rebuild_target, *self.retired, *draining)
                        if v}.values():
            version.close_batcher()
            version.store.close()
        if self.catalog is not None:
            self.catalog.close()


def _comparable(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def query_text(short_description: str | None, description: str | None, text: str | None) -> str:
    return text.strip() if text is not None else incident_text(short_description, description)


class _UnavailableStore(IncidentStore):
    """Stands in for a store that could not even be opened, so the service can report 503s."""

    name = "unavailable"

    def __init__(self, reason: str, error: type[StoreUnavailableError] = StoreUnavailableError) -> None:
        self.reason = reason
        self.error = error

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error(self.reason)

    create_index = meta = upsert = delete = count = doc_freqs = search_dense = search_sparse = fetch = ping = _fail
    scroll = _fail

    def close(self) -> None:
        return None
