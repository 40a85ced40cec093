"""Copying incidents between index versions from their stored vectors, never re-encoding them: the background
compaction (a fresh Qdrant Edge copy of the serving version) and the move from the embedded store to a Qdrant
server or cluster (`incident-sim models migrate`). The same points (dense vector, BM25 sparse vector, fields)
and the same index metadata (model, analyzer, avgdl) mean the same scores on the copy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from tqdm import tqdm

from indexing.errors import IncidentSimError, IndexMissingError
from indexing.lexical import SparseVector
from indexing.store.base import IncidentStore, IndexCatalog, IndexPoint

logger = logging.getLogger(__name__)

COPY_PAGE = 256


def copy_ids(point_ids: Iterable[str], source: IncidentStore, target: IncidentStore, page_size: int = COPY_PAGE
             ) -> int:
    """Copy these incidents as `source` holds them now (vectors included); delete those it no longer has."""
    ids = sorted(point_ids)
    for start in range(0, len(ids), page_size):
        chunk = ids[start : start + page_size]
        found = source.fetch(chunk, with_vectors=True)
        points = []
        for s in found:
            if s.dense is None or s.sparse is None:
                raise IncidentSimError(f"stored incident {s.point_id} has no vectors to copy")
            sparse = sorted(s.sparse.items())
            points.append(IndexPoint(s.point_id, s.dense, SparseVector([t for t, _ in sparse],
                                                                       [v for _, v in sparse]), s.payload))
        if points:
            target.upsert(points)
        gone = set(chunk) - {s.point_id for s in found}
        if gone:
            target.delete(sorted(gone))
    return len(ids)


def copy_all(source: IncidentStore, target: IncidentStore, page_size: int = COPY_PAGE,
             on_page: Callable[[int], None] | None = None) -> int:
    """Copy every incident of `source` into `target`, page by page; `on_page` hears how many each page held."""
    copied, offset = 0, None
    while True:
        page, offset = source.scroll(offset, page_size)
        done = copy_ids([s.point_id for s in page], source, target, page_size)
        copied += done
        if on_page is not None:
            on_page(done)
        if offset is None:
            return copied


def copy_index(source: IncidentStore, target: IndexCatalog, name: str | None = None, page_size: int = COPY_PAGE,
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
        with tqdm(total=total, desc=f"copying {name}", unit="inc", disable=not progress) as bar:
            copied = copy_all(source, store, page_size, on_page=bar.update)
        if store.count() != total:
            raise IncidentSimError(f"the copy holds {store.count()} incidents, the source {total}: not switching")
    finally:
        store.close()
    target.mark_complete(name)
    if switch:
        target.switch(name)
    logger.info("copied %d incidents into index version %s%s", copied, name, " and switched to it" if switch else "")
    return name, copied
