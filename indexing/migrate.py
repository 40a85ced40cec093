"""Copy an index version from one store to another (Qdrant Edge on disk -> a Qdrant server or cluster): the same
points (dense vector, BM25 sparse vector, fields) and the same index metadata (model, analyzer, avgdl), so
scores on the target equal scores on the source and no incident is re-encoded. The target version is switched
to only once every point is there and the counts agree."""

from __future__ import annotations

import logging

from tqdm import tqdm

from indexing.errors import IncidentSimError, IndexMissingError
from indexing.lexical import SparseVector
from indexing.store.base import IncidentStore, IndexCatalog, IndexPoint

logger = logging.getLogger(__name__)


def copy_index(source: IncidentStore, target: IndexCatalog, name: str | None = None, page_size: int = 256,
               progress: bool = True, switch: bool = True) -> tuple[str, int]:
    """Copy `source` into a new version of `target` named `name` (default: the source's index version); returns
    the name and how many incidents were copied. A copy cut short leaves an incomplete version, which the
    target's next start removes (never served)."""
    meta = source.meta()
    if meta is None:
        raise IndexMissingError("the source index has no metadata: nothing to migrate")
    name = name or meta.index_version
    if name in target.versions():
        raise IncidentSimError(f"index version {name} already exists at the target; drop it or keep it")
    total = source.count()
    store = target.create(name)
    try:
        store.create_index(meta)
        copied = 0
        offset: str | None = None
        with tqdm(total=total, desc=f"copying {name}", unit="inc", disable=not progress) as bar:
            while True:
                page, offset = source.scroll(offset, page_size)
                full = source.fetch([p.point_id for p in page], with_vectors=True)
                points = []
                for stored in full:
                    if stored.dense is None or stored.sparse is None:
                        raise IncidentSimError(f"incident {stored.payload.get('number')} has no vectors in the source")
                    indices = sorted(stored.sparse)
                    points.append(IndexPoint(stored.point_id, stored.dense,
                                             SparseVector(indices, [stored.sparse[i] for i in indices]),
                                             stored.payload))
                store.upsert(points)
                copied += len(points)
                bar.update(len(points))
                if offset is None:
                    break
        if store.count() != total:
            raise IncidentSimError(f"the copy holds {store.count()} incidents, the source {total}: not switching")
    finally:
        store.close()
    target.mark_complete(name)
    if switch:
        target.switch(name)
    logger.info("copied %d incidents into index version %s%s", copied, name, " and switched to it" if switch else "")
    return name, copied
