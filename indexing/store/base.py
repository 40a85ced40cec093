"""The store interface every adapter implements (contract-tested in tests/test_store_contract.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from indexing.lexical import SparseVector

DENSE = "dense"
SPARSE = "bm25"
TERMS_FIELD = "terms"  # payload: the sparse vector's indices, for exact document frequencies
# ServiceNow reference/choice fields may come with their display value beside the raw one (a sys_id, a choice
# value): `<field>_display` holds it, and a filter on <field> matches either (filter_keys)
DISPLAY_SUFFIX = "_display"
DISPLAYED_FIELDS = ("category", "subcategory", "assignment_group", "cmdb_ci", "state", "sys_domain")
KEYWORD_FIELDS = ("number", "category", "subcategory", "assignment_group", "cmdb_ci", "problem_id", "state",
                  "sys_domain", *(f + DISPLAY_SUFFIX for f in DISPLAYED_FIELDS))
DATETIME_FIELDS = ("opened_at",)
FILTER_FIELDS = ("category", "subcategory", "assignment_group", "cmdb_ci", "state", "sys_domain")


def filter_keys(field: str) -> tuple[str, ...]:
    """The payload keys a filter on `field` matches: the field and, for a displayed field, its display value."""
    return (field, field + DISPLAY_SUFFIX) if field in DISPLAYED_FIELDS else (field,)


@dataclass(frozen=True)
class IncidentFilter:
    """Conditions every adapter applies *inside* the Qdrant query (payload indexes), never to a short
    list afterwards: each keyword field must equal one of its values, opened_at lies in
    [opened_after, opened_before), and excluded incidents are never returned."""

    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    opened_after: datetime | None = None
    opened_before: datetime | None = None
    exclude_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.fields) - set(FILTER_FIELDS)
        if unknown:
            raise ValueError(f"cannot filter on {sorted(unknown)}; filterable fields: {FILTER_FIELDS}")

    @property
    def empty(self) -> bool:
        return not (self.fields or self.opened_after or self.opened_before or self.exclude_ids)


def rfc3339(moment: datetime) -> str:
    """A filter bound as Qdrant parses it; a naive datetime is taken as UTC (as Qdrant takes stored ones)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class IndexMeta:
    """What an index version was built with. The service refuses an index built by another model."""

    index_version: str
    model_version: str  # the bundle that created the index
    encoder_id: str  # what the vectors mean: any bundle with this encoder_id may query the index
    dim: int
    analyzer: str
    k1: float
    b: float
    avgdl: float
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexMeta:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class IndexPoint:
    point_id: str
    dense: np.ndarray
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredIncident:
    point_id: str
    payload: dict[str, Any]
    dense: np.ndarray | None
    sparse: dict[int, float] | None
    terms: tuple[int, ...] = ()  # the incident's BM25 term ids (for explanations)


def stored_incident(record: Any) -> StoredIncident:
    """Convert a record of either Qdrant engine (`.id`, `.payload`, `.vector` with named dense and sparse
    vectors; both engines use the same shapes) into a StoredIncident."""
    vectors = record.vector if isinstance(record.vector, dict) else {}
    dense, sparse = vectors.get(DENSE), vectors.get(SPARSE)
    payload = dict(record.payload or {})
    terms = payload.pop(TERMS_FIELD, None) or ()
    return StoredIncident(
        point_id=str(record.id),
        payload=payload,
        terms=tuple(int(t) for t in terms),
        dense=np.asarray(dense, dtype=np.float32) if dense is not None else None,
        sparse=dict(zip(sparse.indices, sparse.values, strict=True)) if sparse is not None else None,
    )


@dataclass(frozen=True)
class Hit:
    point_id: str
    score: float


class IncidentStore(ABC):
    """A Qdrant-backed incident index: dense vectors (cosine), BM25 sparse vectors (IDF modifier)
    and the incident fields as payload."""

    name: str = "store"

    @abstractmethod
    def create_index(self, meta: IndexMeta) -> None:
        """Create an empty index version described by `meta` (fails if one exists)."""

    @abstractmethod
    def meta(self) -> IndexMeta | None:
        """The metadata of the existing index, or None if no index exists yet."""

    @abstractmethod
    def upsert(self, points: Sequence[IndexPoint]) -> None: ...

    @abstractmethod
    def delete(self, point_ids: Sequence[str]) -> None: ...

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def doc_freqs(self, term_ids: Sequence[int]) -> dict[int, int]:
        """How many stored incidents contain each term (what Qdrant's IDF modifier counts)."""

    def bm25_stats(self, term_ids: Sequence[int]) -> tuple[int, dict[int, int]]:
        """The incident count and the document frequency of each term: what BM25's IDF and the score's
        bound need. Counted in the store here; a store that is the only writer of its index keeps them."""
        return self.count(), self.doc_freqs(term_ids)

    @abstractmethod
    def search_dense(self, vector: np.ndarray, limit: int, among: Sequence[str] | None = None,
                     where: IncidentFilter | None = None) -> list[Hit]:
        """Cosine of the best `limit` incidents matching `where`; with `among`, exactly those incidents
        (exact search)."""

    @abstractmethod
    def search_sparse(self, vector: SparseVector, limit: int, among: Sequence[str] | None = None,
                      where: IncidentFilter | None = None) -> list[Hit]:
        """Qdrant's BM25 score (IDF applied by Qdrant over the whole index) of the best `limit` incidents
        matching `where`; with `among`, of those incidents only (incidents sharing no term with the query
        are not returned)."""

    @abstractmethod
    def fetch(self, point_ids: Sequence[str], with_vectors: bool = True) -> list[StoredIncident]: ...

    @abstractmethod
    def scroll(self, offset: str | None, limit: int) -> tuple[list[StoredIncident], str | None]:
        """One page of stored incidents (payload and terms, no vectors) in id order, and the offset of the
        next page (None after the last). Re-indexing with a new model reads the incidents this way."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailableError when the store cannot answer."""

    def optimize(self) -> None:  # noqa: B027 - optional hook, most adapters need nothing
        """Build search structures after a bulk load (no-op where the engine does it itself)."""

    @abstractmethod
    def close(self) -> None: ...


def _comparable_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stored_payloads(store: IncidentStore, page_size: int = 512) -> dict[str, dict[str, Any]]:
    """Every stored incident's fields, by point id (one scroll of the whole version, no vectors)."""
    out: dict[str, dict[str, Any]] = {}
    offset: str | None = None
    while True:
        page, offset = store.scroll(offset, page_size)
        out.update((x.point_id, x.payload) for x in page)
        if offset is None:
            return out


REBUILD_STALE_AFTER_S = 600.0  # a rebuild whose replica has not written its heartbeat for this long has died


def rebuild_in_progress(control: dict[str, Any], now: datetime | None = None) -> str | None:
    """The index version another replica is building, or None (none, or its replica stopped beating)."""
    building = control.get("rebuilding")
    if not building:
        return None
    try:
        beat = datetime.fromisoformat(str(control.get("heartbeat_at") or control.get("started_at")))
    except ValueError:
        return None
    moment = now or datetime.now(UTC)
    return str(building) if (moment - beat).total_seconds() < REBUILD_STALE_AFTER_S else None


class IndexCatalog(ABC):
    """The index versions of one collection and which one is active. A new model gets a new version;
    switching the active version is atomic (a pointer file for Qdrant Edge, a collection alias for a
    Qdrant server). A version is `complete` once fully built and verified; an incomplete version that
    is not active (a rebuild cut short) is removed by `clean_incomplete`."""

    @abstractmethod
    def active(self) -> str | None:
        """Name of the active index version, or None when there is no index yet."""

    @abstractmethod
    def versions(self) -> dict[str, bool]:
        """Every index version, and whether it is complete."""

    @abstractmethod
    def open(self, name: str) -> IncidentStore: ...

    @abstractmethod
    def created_at(self, name: str) -> str:
        """When the version was created (ISO 8601, from its metadata); "" when it has none yet."""

    @abstractmethod
    def model_of(self, name: str) -> str:
        """The model version that built the version (from its metadata); "" when it has none yet."""

    def meta_of_version(self, name: str) -> IndexMeta | None:
        """A version's metadata (read-only callers: doctor)."""
        store = self.open(name)
        try:
            return store.meta()
        finally:
            store.close()

    def count_of(self, name: str) -> int | None:
        """How many incidents a version holds; None where counting would mean opening what must stay closed."""
        store = self.open(name)
        try:
            return store.count()
        finally:
            store.close()

    def by_age(self, names: Iterable[str]) -> list[str]:
        """`names` newest first, by the creation time recorded in each version's metadata (never by name:
        `mpnet-...` sorts after `finetuned-...` whatever their age)."""
        return sorted(names, key=lambda n: (_comparable_time(self.created_at(n)), n), reverse=True)

    @abstractmethod
    def create(self, name: str) -> IncidentStore:
        """An empty, incomplete version (call `create_index` on it next)."""

    @abstractmethod
    def mark_complete(self, name: str) -> None: ...

    @abstractmethod
    def switch(self, name: str, model_version: str | None = None) -> None:
        """Make `name` the active version, atomically, with `model_version` the bundle that serves with it
        (default: the one that built it). This is the commit point of every switch."""

    def active_model(self) -> str | None:
        """The bundle the commit point names for the active version (None: not recorded, use the registry)."""
        return None

    def holder(self) -> str | None:
        """Who else holds this catalog when that keeps this process from changing it (None: nobody)."""
        return None

    def writable(self) -> str | None:
        """None when the active index can take writes; otherwise why not (readiness reports not_writable)."""
        return None

    def check_room(self, need_bytes: int = 0) -> None:  # noqa: B027 - a server keeps its own disk
        """Raise NotWritableError unless there is room for `need_bytes` more (a copy of a version) and the reserve."""

    def size_of(self, name: str) -> int:
        """Bytes a version takes on this machine's disk (0 where it lives elsewhere)."""
        return 0

    @abstractmethod
    def drop(self, name: str) -> None: ...

    # Several processes (service replicas) share this catalog: a model switch made by one must be followed by the
    # others (Engine.follow_replicas), through the control record below. False: one process owns it (Edge).
    shared: bool = False

    def control(self) -> dict[str, Any]:
        """The shared rebuild/switch record: {"rebuilding": index version, "model_version": ...} while a
        replica rebuilds, {} otherwise."""
        return {}

    def set_control(self, record: dict[str, Any]) -> None:  # noqa: B027 - nothing to share for one process
        """Publish the rebuild/switch record to every replica."""

    def clean_incomplete(self) -> list[str]:
        active = self.active()
        building = rebuild_in_progress(self.control())  # another replica's live rebuild is not left over
        dropped = [name for name, complete in self.versions().items()
                   if not complete and name != active and name != building]
        for name in dropped:
            self.drop(name)
        return dropped

    # Whether the engine optimizes its indexes by itself (a Qdrant server does, in its own process). When it
    # does not (Qdrant Edge), the service builds a compacted copy of the active version in the background.
    self_optimizing: bool = True

    def optimize_apart(self, name: str, timeout_s: float = 3600.0) -> float:
        """Optimize the version `name`, which no store of this process holds open, without holding this
        process's interpreter; returns the seconds taken (0 where the engine optimizes by itself)."""
        return 0.0

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release shared resources (a client)."""
