"""Qdrant server or cluster, reached by URL with qdrant-client (`":memory:"` stands in for it in tests)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from indexing.errors import StoreUnavailableError
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
    IndexCatalog,
    IndexMeta,
    IndexPoint,
    StoredIncident,
    filter_keys,
    rfc3339,
    stored_incident,
)

logger = logging.getLogger(__name__)

META_KEY = "incident_sim_index"


@dataclass(frozen=True)
class CollectionLayout:
    """How a new index version's collection is laid out on a Qdrant cluster. One shard (the default) keeps BM25
    exact: Qdrant's IDF modifier counts document frequencies per shard, so with several shards an incident's BM25
    score depends on which shard holds it. Replicas add availability and read capacity without that cost;
    `write_consistency` replicas must acknowledge a write before it is acknowledged to the caller."""

    shards: int = 1
    replication_factor: int = 1
    write_consistency: int = 1


class ServerStore(IncidentStore):
    """One index version = one collection; its IndexMeta lives in the collection's metadata."""

    name = "qdrant-server"

    def __init__(self, url: str, collection: str, api_key: str | None = None, timeout: float = 5.0,
                 hnsw_ef: int = 256, client: QdrantClient | None = None,
                 layout: CollectionLayout | None = None) -> None:
        self.url = url
        self.collection = collection
        self.hnsw_ef = hnsw_ef
        self.layout = layout or CollectionLayout()
        self._owns_client = client is None
        if client is not None:
            self.client = client
            self._meta = None
            return
        try:
            if url == ":memory:":
                self.client = QdrantClient(location=":memory:")
            else:
                # no version probe in the constructor: it would block start-up for `timeout` when Qdrant is down
                self.client = QdrantClient(url=url, api_key=api_key, timeout=int(timeout), check_compatibility=False)
        except Exception as exc:
            raise StoreUnavailableError(f"cannot connect to Qdrant at {url}: {exc}") from exc
        self._meta: IndexMeta | None = None

    def _call(self, what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return fn(*args, **kwargs)
        except StoreUnavailableError:
            raise
        except Exception as exc:
            # Connection refused, timeouts and 5xx all mean the same to our callers: not now.
            logger.debug("Qdrant at %s failed on %s: %r", self.url, what, exc)
            raise StoreUnavailableError(f"Qdrant at {self.url} failed on {what}: {type(exc).__name__}") from exc

    def create_index(self, meta: IndexMeta) -> None:
        if self._call("collection_exists", self.client.collection_exists, self.collection):
            raise FileExistsError(f"collection {self.collection} already exists at {self.url}")
        self._call(
            "create_collection",
            self.client.create_collection,
            collection_name=self.collection,
            vectors_config={DENSE: models.VectorParams(size=meta.dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={META_KEY: meta.to_dict()},
            shard_number=self.layout.shards,
            replication_factor=self.layout.replication_factor,
            write_consistency_factor=self.layout.write_consistency,
        )
        self.client.create_payload_index(self.collection, TERMS_FIELD, models.PayloadSchemaType.INTEGER)
        for field in KEYWORD_FIELDS:
            self.client.create_payload_index(self.collection, field, models.PayloadSchemaType.KEYWORD)
        for field in DATETIME_FIELDS:
            self.client.create_payload_index(self.collection, field, models.PayloadSchemaType.DATETIME)
        self._meta = meta

    def meta(self) -> IndexMeta | None:
        if self._meta is None:
            if not self._call("collection_exists", self.client.collection_exists, self.collection):
                return None
            info = self._call("get_collection", self.client.get_collection, self.collection)
            data = (info.config.metadata or {}).get(META_KEY)
            self._meta = IndexMeta.from_dict(data) if data else None
        return self._meta

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        structs = [
            models.PointStruct(
                id=p.point_id,
                vector={DENSE: [float(x) for x in p.dense],
                        SPARSE: models.SparseVector(indices=list(p.sparse.indices), values=list(p.sparse.values))},
                payload={**p.payload, TERMS_FIELD: list(p.sparse.indices)},
            )
            for p in points
        ]
        self._call("upsert", self.client.upsert, self.collection, points=structs, wait=True)

    def delete(self, point_ids: Sequence[str]) -> None:
        self._call("delete", self.client.delete, self.collection,
                   points_selector=models.PointIdsList(points=list(point_ids)), wait=True)

    def count(self) -> int:
        return int(self._call("count", self.client.count, self.collection, exact=True).count)

    def doc_freqs(self, term_ids: Sequence[int]) -> dict[int, int]:
        out = {}
        for t in term_ids:
            flt = models.Filter(must=[models.FieldCondition(key=TERMS_FIELD, match=models.MatchValue(value=int(t)))])
            out[t] = int(self._call("count", self.client.count, self.collection, count_filter=flt, exact=True).count)
        return out

    def search_dense(self, vector: np.ndarray, limit: int, among: Sequence[str] | None = None,
                     where: IncidentFilter | None = None) -> list[Hit]:
        if among is not None and not among:
            return []
        res = self._call("query_points", self.client.query_points, self.collection,
                         query=[float(x) for x in vector], using=DENSE, limit=limit,
                         query_filter=_filter(among, where),
                         search_params=models.SearchParams(hnsw_ef=max(self.hnsw_ef, limit), exact=among is not None))
        return [Hit(str(p.id), float(p.score)) for p in res.points]

    def search_sparse(self, vector: SparseVector, limit: int, among: Sequence[str] | None = None,
                      where: IncidentFilter | None = None) -> list[Hit]:
        if not vector.indices or (among is not None and not among):
            return []
        res = self._call("query_points", self.client.query_points, self.collection,
                         query=models.SparseVector(indices=vector.indices, values=vector.values),
                         using=SPARSE, limit=limit, query_filter=_filter(among, where))
        return [Hit(str(p.id), float(p.score)) for p in res.points]

    def fetch(self, point_ids: Sequence[str], with_vectors: bool = True) -> list[StoredIncident]:
        if not point_ids:
            return []
        records = self._call("retrieve", self.client.retrieve, self.collection, ids=list(point_ids),
                             with_payload=True, with_vectors=with_vectors)
        return [stored_incident(rec) for rec in records]

    def scroll(self, offset: str | None, limit: int) -> tuple[list[StoredIncident], str | None]:
        records, next_offset = self._call("scroll", self.client.scroll, self.collection, offset=offset, limit=limit,
                                          with_payload=True, with_vectors=False)
        return [stored_incident(rec) for rec in records], None if next_offset is None else str(next_offset)

    def ping(self) -> None:
        self._call("get_collections", self.client.get_collections)

    def close(self) -> None:
        if not self._owns_client:
            return  # the catalog's shared client
        try:
            self.client.close()
        except Exception:  # closing a dead connection is not an error worth raising
            logger.debug("ignoring error while closing the Qdrant client", exc_info=True)


def _filter(among: Sequence[str] | None, where: IncidentFilter | None) -> models.Filter | None:
    must: list = [] if among is None else [models.HasIdCondition(has_id=list(among))]
    must_not: list = []
    if where is not None:
        for key, values in where.fields.items():
            either = [models.FieldCondition(key=k, match=models.MatchAny(any=list(values)))
                      for k in filter_keys(key)]
            must.append(either[0] if len(either) == 1 else models.Filter(should=either))  # raw or display value
        if where.opened_after is not None or where.opened_before is not None:
            must.append(models.FieldCondition(key="opened_at", range=models.DatetimeRange(
                gte=rfc3339(where.opened_after) if where.opened_after else None,
                lt=rfc3339(where.opened_before) if where.opened_before else None)))
        if where.exclude_ids:
            must_not.append(models.HasIdCondition(has_id=list(where.exclude_ids)))
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)


COMPLETE_KEY = "incident_sim_complete"
SERVING_KEY = "incident_sim_serving_model"  # the bundle that serves with this version (set by switch)
CONTROL_KEY = "incident_sim_control"


class ServerCatalog(IndexCatalog):
    """Index versions are collections `<alias>--<name>`; the active one is what the collection alias
    `<alias>` points to, switched with one atomic alias update. Stores opened here bind the concrete
    collection, so a request in flight keeps its version while the alias moves."""

    shared = True  # every replica of the service reads and writes these collections

    def __init__(self, url: str, alias: str, api_key: str | None = None, timeout: float = 5.0,
                 layout: CollectionLayout | None = None, client: QdrantClient | None = None) -> None:
        self.url = url
        self.alias = alias
        self.layout = layout or CollectionLayout()
        self._seed = ServerStore(url, alias, api_key=api_key, timeout=timeout, layout=self.layout, client=client)
        self.client = self._seed.client

    @property
    def _control_collection(self) -> str:
        return f"{self.alias}.control"  # not `<alias>--...`: never taken for an index version

    def control(self) -> dict[str, Any]:
        name = self._control_collection
        if not self._call("collection_exists", self.client.collection_exists, name):
            return {}
        info = self._call("get_collection", self.client.get_collection, name)
        return dict((info.config.metadata or {}).get(CONTROL_KEY) or {})

    def set_control(self, record: dict[str, Any]) -> None:
        name = self._control_collection
        if not self._call("collection_exists", self.client.collection_exists, name):
            self._call("create_collection", self.client.create_collection, collection_name=name,
                       vectors_config={}, metadata={CONTROL_KEY: record})
            return
        self._call("update_collection", self.client.update_collection, name, metadata={CONTROL_KEY: record})

    def _collection(self, name: str) -> str:
        return f"{self.alias}--{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"

    def _call(self, what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._seed._call(what, fn, *args, **kwargs)

    def _names(self) -> dict[str, str]:
        """collection -> index version name, for this alias's versions."""
        out = {}
        for c in self._call("get_collections", self.client.get_collections).collections:
            if c.name.startswith(self.alias + "--"):
                info = self._call("get_collection", self.client.get_collection, c.name)
                meta = (info.config.metadata or {}).get(META_KEY) or {}
                out[c.name] = str(meta.get("index_version") or c.name[len(self.alias) + 2:])
        return out

    def active(self) -> str | None:
        for a in self._call("get_aliases", self.client.get_aliases).aliases:
            if a.alias_name == self.alias:
                return self._names().get(a.collection_name, a.collection_name)
        if self._call("collection_exists", self.client.collection_exists, self.alias):
            return LEGACY_SERVER
        return None

    def versions(self) -> dict[str, bool]:
        out = {}
        for collection, name in self._names().items():
            info = self._call("get_collection", self.client.get_collection, collection)
            out[name] = bool((info.config.metadata or {}).get(COMPLETE_KEY))
        active = self.active()
        if active == LEGACY_SERVER:
            out[LEGACY_SERVER] = True
        return out

    def _store(self, name: str) -> ServerStore:
        collection = self.alias if name == LEGACY_SERVER else self._collection(name)
        return ServerStore(self.url, collection, client=self.client, layout=self.layout)

    def created_at(self, name: str) -> str:
        meta = self._store(name).meta()
        return meta.created_at if meta else ""

    def model_of(self, name: str) -> str:
        meta = self._store(name).meta()
        return meta.model_version if meta else ""

    def open(self, name: str) -> ServerStore:
        store = self._store(name)
        if store.meta() is None:
            raise StoreUnavailableError(f"index version {name} does not exist at {self.url}")
        return store

    def create(self, name: str) -> ServerStore:
        return self._store(name)  # create_index() makes the collection

    def mark_complete(self, name: str) -> None:
        self._call("update_collection", self.client.update_collection, self._collection(name),
                   metadata={COMPLETE_KEY: True})

    def switch(self, name: str, model_version: str | None = None) -> None:
        """The bundle that serves is recorded on the version's own collection first, then the alias moves (the
        commit point): a crash between the two leaves the alias, and what it names, as they were."""
        if not self.versions().get(name):
            raise StoreUnavailableError(f"index version {name} is missing or incomplete; not switching")
        if self.active() == LEGACY_SERVER:
            raise StoreUnavailableError(f"collection {self.alias} is a plain collection, not an alias; move it "
                                        "to a versioned collection before hot-swapping")
        self._call("update_collection", self.client.update_collection, self._collection(name),
                   metadata={SERVING_KEY: model_version or self.model_of(name)})
        ops: list = []
        if self.active() is not None:
            ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)))
        ops.append(models.CreateAliasOperation(create_alias=models.CreateAlias(
            collection_name=self._collection(name), alias_name=self.alias)))
        self._call("update_collection_aliases", self.client.update_collection_aliases, change_aliases_operations=ops)

    def active_model(self) -> str | None:
        active = self.active()
        if active is None or active == LEGACY_SERVER:
            return None
        info = self._call("get_collection", self.client.get_collection, self._collection(active))
        model = (info.config.metadata or {}).get(SERVING_KEY)
        return str(model) if model else None

    def drop(self, name: str) -> None:
        if name == self.active():
            raise ValueError(f"index version {name} is active; switch away from it first")
        self._call("delete_collection", self.client.delete_collection, self._collection(name))
        logger.info("dropped index version %s", name)

    def close(self) -> None:
        self._seed._owns_client = True
        self._seed.close()


LEGACY_SERVER = "legacy"
