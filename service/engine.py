"""The retrieval engine: bundle + encoder + store + hybrid search, with no HTTP in sight.
Routes, tests and benchmarks all call `Engine.similar`; incident writes go through `upsert_incidents` and
`delete_incident`. Which index versions serve and receive writes belongs to `service.versions` (the
`VersionSet` this engine holds); the engine only reads it and applies writes to its write targets."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from indexing.bundle import CALIBRATED, Bundle
from indexing.encoder import OnnxEncoder
from indexing.errors import (
    IncidentNotFoundError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    InvalidQueryError,
    NotWritableError,
    PointerLostError,
    StoreUnavailableError,
)
from indexing.incidents import Incident, check_incident, incident_text, point_id_for
from indexing.indexer import build_points
from indexing.registry import BundleRegistry
from indexing.search import DEFAULT_TOP_K, HybridSearcher, ScoredIncident
from indexing.store.base import IncidentFilter, IncidentStore, IndexCatalog
from service.settings import Settings
from service.versions.replicas import ReplicaFollower
from service.versions.serving import EncoderOptions, ServingVersion
from service.versions.state import VersionSet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """The engine's limits and query-path tuning, from Settings in one place (`from_settings`)."""

    candidate_k: int = 100
    max_text_chars: int = 20_000
    max_top_k: int = 50
    encode_window_s: float = 0.002
    encode_max_batch: int = 1
    query_cache_size: int = 1024
    max_query_tokens: int | None = None  # None: the model's own limit
    follow_interval_s: float = 2.0  # replicas sharing a Qdrant server: how stale a read may be about a switch
    encoders: EncoderOptions = field(default_factory=EncoderOptions)

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        return cls(candidate_k=settings.candidate_k, max_text_chars=settings.max_text_chars,
                   max_top_k=settings.max_top_k, encode_window_s=settings.encode_window_ms / 1000,
                   encode_max_batch=settings.encode_max_batch, query_cache_size=settings.query_cache_size,
                   max_query_tokens=settings.max_query_tokens, follow_interval_s=settings.replica_follow_s,
                   encoders=EncoderOptions.from_settings(settings))


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

    @property
    def calibrated(self) -> bool:
        """The threshold was calibrated: only then is a result's `similar` a decision."""
        return self.threshold_source == CALIBRATED

    def is_similar(self, result: ScoredIncident) -> bool | None:
        """score >= threshold when the threshold is calibrated; None (no flag either way) while it is the
        uncalibrated default."""
        return result.score >= self.threshold if self.calibrated else None


@dataclass(frozen=True)
class Readiness:
    ready: bool
    code: str  # ready | index_missing | index_locked | index_pointer_lost | not_writable | index_mismatch |
    # store_unavailable | internal
    message: str


_NOT_READY: list[tuple[type[Exception], str, str]] = [
    (IndexLockedError, "index_locked", "the index is held by another process"),
    (PointerLostError, "index_pointer_lost", "the pointer naming the serving index version is lost: name it with "
     "`incident-sim models recover INDEX_VERSION` (the service log lists the versions on disk)"),
    (NotWritableError, "not_writable", "the index cannot take writes (disk full or read-only); see the service log"),
    (IndexMismatchError, "index_mismatch", "the index was built by another model than the one loaded"),
    (IndexMissingError, "index_missing", "the incident index does not exist yet: index incidents first"),
    (StoreUnavailableError, "store_unavailable", "the incident store is unreachable or failing"),
]


class Engine:
    """Answers queries and applies incident writes on the current ServingVersion. A model switch builds
    a new version beside it (writes go to both meanwhile) and replaces `current` in one assignment: a
    request that already holds the old version finishes on it, so its model and index always match."""

    def __init__(self, bundle: Bundle, encoder: OnnxEncoder, store: IncidentStore, index_name: str | None = None,
                 catalog: IndexCatalog | None = None, registry: BundleRegistry | None = None,
                 options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self.catalog = catalog
        self.registry = registry
        self.versions = VersionSet(ServingVersion(bundle, encoder, store, index_name, self.options.candidate_k))
        self.replicas = ReplicaFollower(self.versions, catalog, registry, self.options.encoders,
                                        self.options.follow_interval_s)
        self._last_not_ready: tuple[str, str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        """Built in one place from settings: service.wiring.build_engine."""
        from service.wiring import build_engine

        return build_engine(settings)

    # the current version's parts and the serving set, read-only (what /readyz, /metrics and the tests look at)
    @property
    def current(self) -> ServingVersion:
        return self.versions.current

    @property
    def rebuild_target(self) -> ServingVersion | None:
        return self.versions.rebuild_target

    @property
    def replica_id(self) -> str:
        return self.replicas.replica_id

    @property
    def write_journal(self) -> set[str] | None:
        return self.versions.journal

    @property
    def writes_since_build(self) -> int:
        return self.versions.writes_since_build

    @property
    def last_write_at(self) -> float:
        return self.versions.last_write_at

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

    @property
    def max_text_chars(self) -> int:
        return self.options.max_text_chars

    @property
    def max_top_k(self) -> int:
        return self.options.max_top_k

    def searcher(self) -> HybridSearcher:
        return self.current.searcher()

    def reset_searcher(self, candidate_k: int | None = None) -> None:
        self.current.reset_searcher(candidate_k)

    def readiness(self) -> Readiness:
        """Ready or not, with a reason code and a short message free of paths and URLs (the probe is open);
        the detail goes to the log, once per change of reason. An index that cannot take writes (disk full,
        read-only) is not ready: pushes would fail."""
        try:
            self.store.ping()
            self.searcher()
            if self.catalog is not None and (why := self.catalog.writable()) is not None:
                raise NotWritableError(why)
        except Exception as exc:  # readiness never raises: any failure means not ready
            code, message = next(((c, m) for kind, c, m in _NOT_READY if isinstance(exc, kind)),
                                 ("internal", "the engine failed its readiness check; see the service log"))
            if self._last_not_ready != (code, str(exc)):
                logger.error("not ready (%s): %s", code, exc)
                self._last_not_ready = (code, str(exc))
            return Readiness(False, code, message)
        self._last_not_ready = None
        return Readiness(True, "ready", "bundle loaded, index reachable")

    def build_query(self, short_description: str | None, description: str | None, text: str | None,
                    top_k: int, exclude: Sequence[str] = (), fields: Mapping[str, Sequence[str]] | None = None,
                    opened_after: datetime | None = None, opened_before: datetime | None = None) -> SimilarQuery:
        """Check a request against the engine's limits and turn it into a query (InvalidQueryError says what
        to fix). `fields`, the opened_at window and `exclude` become a store-side filter."""
        if text is not None and (short_description is not None or description is not None):
            raise InvalidQueryError("give either 'text' or 'short_description'/'description', not both")
        for name, value in (("short_description", short_description), ("description", description),
                            ("text", text)):
            if value is not None and len(value) > (limit := self.options.max_text_chars):
                raise InvalidQueryError(f"{name} is {len(value)} characters; the limit is {limit}")
        if not 1 <= top_k <= self.options.max_top_k:
            raise InvalidQueryError(f"top_k must be between 1 and {self.options.max_top_k}")
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
        self.replicas.follow(strict=False)
        version = self.current  # one read: this request uses this model and this index to the end
        searcher = version.searcher()
        t0 = time.perf_counter()
        free_text = query.short_description is None and query.description is None
        o = self.options
        encoder, batcher = version.query_encoder(o.encode_window_s, o.encode_max_batch, o.query_cache_size,
                                                 o.max_query_tokens)
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
        check_incident(incident, self.options.max_text_chars)

    def upsert_incidents(self, incidents: Sequence[Incident]) -> list[WriteOutcome]:
        """Encode and store (create or replace) incidents; searchable once this returns. Check each with
        `check_incident` first: nothing is written unless encoding succeeded for the whole batch. During a
        rebuild the incidents are written to the version being built as well (with its own model)."""
        if not incidents:
            return []
        with self.versions.write_lock:
            self.replicas.follow(strict=True)  # another replica's rebuild: write to its new version too
            versions = self.versions.write_targets()
            current = versions[0]
            existing = {s.point_id for s in current.store.fetch([i.point_id for i in incidents], with_vectors=False)}
            truncated: tuple[bool, ...] = ()
            for version in versions:
                points, cut = build_points(incidents, version.encoder, version.searcher().bm25,
                                           dense_text=version.bundle.dense_text)
                version.store.upsert(points)
                truncated = truncated or cut
            self.versions.record_writes([i.point_id for i in incidents])
        model, index = current.bundle.model_version, str(current.index_version)
        return [WriteOutcome(i.number, i.point_id not in existing, cut, model, index)
                for i, cut in zip(incidents, truncated, strict=True)]

    def get_incident(self, number: str) -> StoredCopy:
        self.replicas.follow(strict=False)
        version = self.current  # one read: the copy, its model and its index come from one version
        version.searcher()
        found = version.store.fetch([point_id_for(number)], with_vectors=False)
        if not found:
            raise IncidentNotFoundError(f"no incident {number} in index {version.index_version}")
        return StoredCopy(found[0].payload, version.bundle.model_version, str(version.index_version))

    def delete_incident(self, number: str) -> None:
        with self.versions.write_lock:
            self.replicas.follow(strict=True)
            self.get_incident(number)
            for version in self.versions.write_targets():
                version.store.delete([point_id_for(number)])
            self.versions.record_writes([point_id_for(number)])

    def close(self) -> None:
        self.versions.close()
        if self.catalog is not None:
            self.catalog.close()


def _comparable(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def query_text(short_description: str | None, description: str | None, text: str | None) -> str:
    return text.strip() if text is not None else incident_text(short_description, description)
