"""The document-frequency table of a Qdrant Edge shard, built when the store first needs it (indexing/docfreq.py
keeps it exact afterwards): from the payload index on the term ids when the engine can count them, else from
every incident's stored term list."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import qdrant_edge as qe

from indexing.docfreq import DocFreqTable
from indexing.store.base import TERMS_FIELD

logger = logging.getLogger(__name__)


def build_table(shard: qe.EdgeShard, path: Path) -> DocFreqTable:
    """The table of `shard` (the index version at `path`, for the log line)."""
    t0 = time.perf_counter()
    table = table_from_facet(shard)
    source = "the term index"
    if table is None:
        table, source = table_from_term_lists(shard), "every incident's term list"
    logger.info("document-frequency table of %s from %s: %d incidents, %d terms (%.2f s)", path, source,
                table.n_docs, table.terms, time.perf_counter() - t0)
    return table


def table_from_facet(shard: qe.EdgeShard) -> DocFreqTable | None:
    """Every term's document count from the payload index on the term ids (one exact facet call): no incident's
    payload is read, so the payload storage is not paged in (about 7x faster than reading every incident's terms at
    100k, and the same counts: tests/test_docfreq.py). None when the engine cannot answer or the answer may be
    incomplete (as many values as the limit)."""
    limit = 2**31 - 1
    try:
        hits = shard.facet(qe.FacetRequest(key=TERMS_FIELD, limit=limit, exact=True)).hits
        n_docs = int(shard.count(qe.CountRequest(exact=True)))
    except Exception as exc:  # an engine without the facet: read the term lists instead
        logger.warning("the term index could not count document frequencies (%s); reading every incident", exc)
        return None
    if len(hits) >= limit:
        return None
    return DocFreqTable.from_counts(n_docs, {int(h.value): int(h.count) for h in hits})


def table_from_term_lists(shard: qe.EdgeShard) -> DocFreqTable:
    """From every stored incident's term ids, read in pages of 2,048."""

    def documents() -> Iterator[list[int]]:
        offset = None
        while True:
            records, offset = shard.scroll(qe.ScrollRequest(
                offset=offset, limit=2048, with_payload=qe.PayloadSelector.Include([TERMS_FIELD]), with_vector=False))
            for r in records:
                yield list((r.payload or {}).get(TERMS_FIELD) or ())
            if offset is None:
                return

    return DocFreqTable.build(documents())
