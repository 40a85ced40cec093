"""Qdrant Edge: Qdrant's own engine in-process, an on-disk shard under the data directory."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import qdrant_edge as qe

from indexing.atomic import atomic_write_json
from indexing.docfreq import DocFreqTable
from indexing.errors import IndexLockedError, NotWritableError, StoreUnavailableError
from indexing.lexical import SparseVector
from indexing.store.base import (
    DATETIME_FIELDS,
    DENSE,
    KEYWORD_FIELDS,
    SPARSE,
    TERMS_FIELD,
    Hit,
    IncidentFilter,
    IncidentStore,
    IndexMeta,
    IndexPoint,
    StoredIncident,
    filter_keys,
    rfc3339,
    stored_incident,
)
from indexing.store.edge_disk import free_bytes, storage_error
from indexing.store.edge_docfreq import build_table
from indexing.store.edge_lock import SHARD_LOCK, DirectoryLock
from indexing.store.edge_warm import WarmResult, dense_vectors_on_disk, warm_page_cache

logger = logging.getLogger(__name__)

META_FILE = "index.json"
_LOCKED_ADVICE = ("{what} is open in {holder}. Qdrant Edge lets one process hold an index: push incidents to the "
                  "running service through its API (PUT /incidents/{{number}}, POST /incidents/bulk), or stop the "
                  "service and run this again")
@dataclass(frozen=True)
class GraphConfig:
    """How Qdrant Edge builds the dense HNSW graph of a new index version (kept by the shard once created).
    `m` links per node and `ef_construct` candidates per insertion trade build time against recall
    (benchmarks.scale measures both); `int8` adds scalar-quantised int8 copies of the vectors, searched first
    and rescored with the original float32 vectors, so the scores stay exact cosines."""

    m: int = 16
    ef_construct: int = 100
    int8: bool = False
    vectors_on_disk: bool = False  # float32 originals left on disk (mapped, read on demand): with int8, RAM holds
    # the int8 copies (a quarter of the floats) and rescoring reads a few originals per query

    def describe(self) -> str:
        return (f"m={self.m}, ef_construct={self.ef_construct}{', int8 + rescoring' if self.int8 else ''}"
                f"{', float32 vectors on disk' if self.vectors_on_disk else ''}")


class EdgeStore(IncidentStore):
    """One index version = one directory: `shard/` (the Edge shard) and `index.json` (IndexMeta)."""

    name = "qdrant-edge"

    def __init__(self, path: str | Path, hnsw_ef: int = 256, graph: GraphConfig | None = None,
                 min_free_bytes: int = 0) -> None:
        """`min_free_bytes`: writes are refused (NotWritableError, a 503) while the disk holding the index has
        less free space than this: Qdrant Edge writes through memory maps, and a write into a full file system
        kills the process with SIGBUS instead of failing."""
        self.path = Path(path)
        self.hnsw_ef = hnsw_ef
        self.graph = graph or GraphConfig()
        self.min_free_bytes = min_free_bytes
        self._shard: qe.EdgeShard | None = None
        self._shard_lock: DirectoryLock | None = None
        self._meta: IndexMeta | None = None
        self._lock = threading.RLock()
        self._df: DocFreqTable | None = None  # built on first use, then kept exact by upsert/delete
        if (self.path / META_FILE).is_file():
            self._open()

    # -- lifecycle -------------------------------------------------------------------------
    def _open(self) -> None:
        """Take the version's shard lock, then load the shard: a second opener is refused before Qdrant Edge's
        load (which writes to the shard) can run."""
        try:
            meta = IndexMeta.from_dict(json.loads((self.path / META_FILE).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreUnavailableError(f"the metadata of index version {self.path.name} is unreadable: {exc}") from exc
        lock = self._lock_shard()
        try:
            self._shard = qe.EdgeShard.load(str(self.path / "shard"))
        except Exception as exc:  # the engine raises plain exceptions for missing/locked shards
            lock.release()
            if "WouldBlock" in str(exc):
                raise IndexLockedError(_LOCKED_ADVICE.format(what=f"the index at {self.path}",
                                                             holder="another process")) from None
            raise StoreUnavailableError(f"cannot open the Qdrant Edge index at {self.path}: {exc}") from exc
        self._meta, self._shard_lock = meta, lock
        logger.info("opened Qdrant Edge index %s at %s (%d incidents)", self._meta.index_version, self.path,
                    self.count())

    def warm(self) -> WarmResult:
        """Read the shard's segment files into the page cache (indexing/store/edge_warm.py); stops early once
        the store is closed."""
        cold = dense_vectors_on_disk(self.path / "shard")
        result = warm_page_cache(self.path / "shard" / "segments", should_stop=lambda: self._shard is None,
                                 skip=lambda path: cold and f"vector_storage-{DENSE}" in path.parts)
        logger.info("page cache warmed for %s: %d files, %.0f MiB in %.2f s%s", self.path.name, result.files,
                    result.bytes_read / 2**20, result.seconds, " (stopped: the index was closed)" if result.stopped
                    else "")
        return result

    def start_warming(self) -> threading.Thread:
        """`warm()` in a daemon thread: queries are answered meanwhile, only the first ones may wait on disk."""
        thread = threading.Thread(target=self.warm, name=f"warm-{self.path.name}", daemon=True)
        thread.start()
        return thread

    def _lock_shard(self) -> DirectoryLock:
        try:
            return DirectoryLock(self.path / SHARD_LOCK, f"the index at {self.path}")
        except IndexLockedError as exc:
            raise IndexLockedError(_LOCKED_ADVICE.format(what=f"the index at {self.path}",
                                                         holder=str(exc).rpartition(" is held by ")[2])) from None

    def create_index(self, meta: IndexMeta) -> None:
        with self._lock:
            if self._meta is not None:
                raise FileExistsError(f"an index already exists at {self.path}")
            graph = self.graph
            config = qe.EdgeConfig(
                vectors={DENSE: qe.EdgeVectorParams(
                    size=meta.dim, distance=qe.Distance.Cosine,
                    memory=qe.Memory.Cold if graph.vectors_on_disk else None,
                    hnsw_config=qe.HnswIndexConfig(m=graph.m, ef_construct=graph.ef_construct,
                                                   full_scan_threshold=10_000),
                    quantization_config=qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99,
                                                                    always_ram=True) if graph.int8 else None)},
                sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            )
            self.path.mkdir(parents=True, exist_ok=True)
            lock = self._lock_shard()
            (self.path / "shard").mkdir(parents=True, exist_ok=True)
            try:
                shard = qe.EdgeShard.create(str(self.path / "shard"), config)
            except BaseException:
                lock.release()
                raise
            self._shard_lock = lock
            shard.update(qe.UpdateOperation.create_field_index(TERMS_FIELD, qe.PayloadSchemaType.Integer))
            for field in KEYWORD_FIELDS:
                shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
            for field in DATETIME_FIELDS:
                shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Datetime))
            shard.flush()
            atomic_write_json(self.path / META_FILE, meta.to_dict())  # the index exists once its metadata is in place
            self._shard, self._meta = shard, meta

    def meta(self) -> IndexMeta | None:
        return self._meta

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise shard calls, and turn the engine's runtime errors (plain Exception: a closed shard, a full
        disk, an I/O error) into StoreUnavailableError, which the service answers with 503 and a reason."""
        with self._lock:
            try:
                yield
            except OSError as exc:
                raise storage_error(self.path, exc) from exc
            except Exception as exc:
                if type(exc) is not Exception:  # ours or a programming error: not the engine's runtime error
                    raise
                raise storage_error(self.path, exc) from exc

    def check_writable(self) -> None:
        """Refuse a write (NotWritableError) while free disk is under the reserve: checked before every write."""
        if self.min_free_bytes <= 0:
            return
        free = free_bytes(self.path)
        if free < self.min_free_bytes:
            raise NotWritableError(f"the disk holding the index has {free / 2**20:.0f} MiB free, less than the "
                                   f"reserve of {self.min_free_bytes / 2**20:.0f} MiB "
                                   "(INCIDENT_SIM_MIN_FREE_DISK_MB): free disk space or move the data directory")

    def _require(self) -> qe.EdgeShard:
        if self._shard is None:
            raise StoreUnavailableError(f"no Qdrant Edge index at {self.path} (run `incident-sim index` first)")
        return self._shard

    # -- writes ----------------------------------------------------------------------------
    def upsert(self, points: Sequence[IndexPoint]) -> None:
        edge_points = [
            qe.Point(
                p.point_id,
                {DENSE: [float(x) for x in p.dense],
                 SPARSE: qe.SparseVector(list(p.sparse.indices), list(p.sparse.values))},
                {**p.payload, TERMS_FIELD: list(p.sparse.indices)},
            )
            for p in points
        ]
        with self._guard():
            shard = self._require()
            self.check_writable()
            before = self._stored_terms(shard, [p.point_id for p in points])
            self._apply(shard, qe.UpdateOperation.upsert_points(edge_points), before,
                        {p.point_id: p.sparse.indices for p in points})

    def delete(self, point_ids: Sequence[str]) -> None:
        with self._guard():
            shard = self._require()
            self.check_writable()
            before = self._stored_terms(shard, point_ids)
            self._apply(shard, qe.UpdateOperation.delete_points(list(point_ids)), before, {})

    def _stored_terms(self, shard: qe.EdgeShard, point_ids: Sequence[str]) -> dict[str, list[int]]:
        """The term ids stored for those of `point_ids` that exist (only while the table is kept)."""
        if self._df is None or not point_ids:
            return {}
        records = shard.retrieve(list(dict.fromkeys(point_ids)), with_payload=qe.PayloadSelector.Include(
            [TERMS_FIELD]), with_vector=False)
        return {str(r.id): list((r.payload or {}).get(TERMS_FIELD) or ()) for r in records}

    def _apply(self, shard: qe.EdgeShard, operation: qe.UpdateOperation, before: dict[str, list[int]],
               after: dict[str, list[int]]) -> None:
        try:
            shard.update(operation)
            shard.flush()
        except BaseException:
            self._df = None  # the write may or may not have happened: rebuild the table from the store
            raise
        if self._df is not None:
            self._df.apply(before, after)

    def optimize(self) -> None:
        with self._guard():
            self._require().optimize()

    # -- reads -----------------------------------------------------------------------------
    def count(self) -> int:
        with self._guard():
            return int(self._require().count(qe.CountRequest(exact=True)))

    def bm25_stats(self, term_ids: Sequence[int]) -> tuple[int, dict[int, int]]:
        """From the document-frequency table (indexing/docfreq.py): no count per query. This process is the
        only writer of the shard (Qdrant Edge locks it), so upsert/delete keep the table exact."""
        with self._guard():
            table = self._table()
            return table.n_docs, table.doc_freqs(term_ids)

    def _table(self) -> DocFreqTable:  # call with the lock held
        if self._df is None:
            self._df = build_table(self._require(), self.path)
        return self._df

    def doc_freqs(self, term_ids: Sequence[int]) -> dict[int, int]:
        with self._guard():
            shard = self._require()
            return {
                t: int(shard.count(qe.CountRequest(exact=True, filter=qe.Filter(
                    must=[qe.FieldCondition(key=TERMS_FIELD, match=qe.MatchValue(int(t)))]))))
                for t in term_ids
            }

    def search_dense(self, vector: np.ndarray, limit: int, among: Sequence[str] | None = None,
                     where: IncidentFilter | None = None, exact: bool = False) -> list[Hit]:
        """`exact` scans every vector instead of walking the graph (the reference for the graph's recall)."""
        if among is not None and not among:
            return []
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest([float(x) for x in vector], using=DENSE),
            filter=_filter(among, where),
            params=qe.SearchParams(hnsw_ef=max(self.hnsw_ef, limit), exact=exact or among is not None,
                                   # with int8 copies, candidates are rescored with the float32 vectors: exact cosines
                                   quantization=qe.QuantizationSearchParams(rescore=True, oversampling=2.0)),
        )
        with self._guard():
            return [Hit(str(p.id), float(p.score)) for p in self._require().query(request)]

    def search_sparse(self, vector: SparseVector, limit: int, among: Sequence[str] | None = None,
                      where: IncidentFilter | None = None) -> list[Hit]:
        if not vector.indices or (among is not None and not among):
            return []
        request = qe.QueryRequest(
            limit=limit, query=qe.Query.Nearest(qe.SparseVector(vector.indices, vector.values), using=SPARSE),
            filter=_filter(among, where),
        )
        with self._guard():
            return [Hit(str(p.id), float(p.score)) for p in self._require().query(request)]

    def fetch(self, point_ids: Sequence[str], with_vectors: bool = True) -> list[StoredIncident]:
        if not point_ids:
            return []
        with self._guard():
            records = self._require().retrieve(list(point_ids), with_payload=True, with_vector=with_vectors)
        return [stored_incident(rec) for rec in records]

    def scroll(self, offset: str | None, limit: int) -> tuple[list[StoredIncident], str | None]:
        request = qe.ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=False)
        with self._guard():
            records, next_offset = self._require().scroll(request)
        return [stored_incident(rec) for rec in records], None if next_offset is None else str(next_offset)

    def ping(self) -> None:
        with self._guard():  # a real (cheap) call: a shard that fails under us is not ready
            self._require().count(qe.CountRequest(exact=False))
        if not (self.path / "shard").is_dir():
            raise StoreUnavailableError(f"the Qdrant Edge shard directory {self.path / 'shard'} has disappeared")

    def close(self) -> None:
        """Flush and release the shard; best effort (a shard that already failed is just let go)."""
        with self._lock:
            shard, self._shard, self._df = self._shard, None, None
            lock, self._shard_lock = self._shard_lock, None
            try:
                if shard is not None:
                    shard.flush()
                    shard.close()
            except Exception as exc:  # the engine's runtime error: nothing left to release
                logger.warning("closing the Qdrant Edge index at %s: %s", self.path, exc)
            finally:
                if lock is not None:
                    lock.release()


def _filter(among: Sequence[str] | None, where: IncidentFilter | None) -> qe.Filter | None:
    must: list = [] if among is None else [qe.HasIdCondition(set(among))]
    must_not: list = []
    if where is not None:
        for key, values in where.fields.items():
            either = [qe.FieldCondition(key=k, match=qe.MatchAny(list(values)))
                      for k in filter_keys(key)]
            must.append(either[0] if len(either) == 1 else qe.Filter(should=either))  # raw or display value
        if where.opened_after is not None or where.opened_before is not None:
            must.append(qe.FieldCondition(key="opened_at", range=qe.RangeDateTime(
                gte=rfc3339(where.opened_after) if where.opened_after else None,
                lt=rfc3339(where.opened_before) if where.opened_before else None)))
        if where.exclude_ids:
            must_not.append(qe.HasIdCondition(set(where.exclude_ids)))
    if not must and not must_not:
        return None
    return qe.Filter(must=must or None, must_not=must_not or None)
