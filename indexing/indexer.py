"""Batches of incidents -> dense + BM25 sparse vectors -> the store."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from tqdm import tqdm

from indexing import lexical, steps
from indexing.bundle import Bundle
from indexing.dense_text import DenseText, TextEncoder
from indexing.errors import IndexMismatchError
from indexing.incidents import Incident
from indexing.store.base import IncidentStore, IndexCatalog, IndexMeta, IndexPoint

logger = logging.getLogger(__name__)

# benchmarks.onboarding (mpnet INT8, 2 cores): pages of 256 sort short texts nearly as well as the whole load
# (padding 1.05x against 1.15x for pages of 64) and keep the progress bar moving; runs of at most 64 rows.
PAGE_SIZE = 256
MAX_RUN_ROWS = 64


def new_index_version(bundle: Bundle) -> str:
    return f"{bundle.model_version}@{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"


def open_or_create_index(store: IncidentStore, bundle: Bundle, corpus: Sequence[Incident],
                         index_version: str | None = None) -> IndexMeta:
    """Return the store's index metadata, creating the index (with avgdl from this corpus) if new.
    An existing index built by another model is refused: its vectors mean something else."""
    meta = store.meta()
    if meta is not None:
        check_index_matches(meta, bundle)
        return meta
    analyzer = lexical.Analyzer.from_name(bundle.bm25["analyzer"])
    now = datetime.now(UTC)
    meta = IndexMeta(
        index_version=index_version or new_index_version(bundle),
        model_version=bundle.model_version,
        encoder_id=bundle.encoder_id,
        dim=bundle.dim,
        analyzer=analyzer.name,
        k1=float(bundle.bm25["k1"]),
        b=float(bundle.bm25["b"]),
        avgdl=lexical.average_document_length(analyzer, [(i.short_description, i.description) for i in corpus]),
        created_at=now.isoformat(),
    )
    store.create_index(meta)
    logger.info("created index %s (avgdl %.1f terms)", meta.index_version, meta.avgdl)
    return meta


def check_index_matches(meta: IndexMeta, bundle: Bundle) -> None:
    if meta.encoder_id != bundle.encoder_id or meta.dim != bundle.dim:
        raise IndexMismatchError(
            f"the index {meta.index_version} was built with model {meta.model_version} (encoder {meta.encoder_id}, "
            f"dim {meta.dim}), but bundle {bundle.model_version} (encoder {bundle.encoder_id}, dim {bundle.dim}) is "
            "loaded: its vectors mean something else; re-index into a new data directory or collection"
        )
    if meta.analyzer != bundle.bm25["analyzer"]:
        raise IndexMismatchError(f"index analyzer {meta.analyzer} differs from the bundle's {bundle.bm25['analyzer']}")


def bm25_encoder_for(meta: IndexMeta, max_query_terms: int | None = None) -> lexical.BM25Encoder:
    """The index's BM25 encoder; `max_query_terms` is the bundle's bound on distinct query terms."""
    try:
        analyzer = lexical.Analyzer.from_name(meta.analyzer)
    except ValueError as exc:
        raise IndexMismatchError(f"index {meta.index_version}: {exc}") from None
    return lexical.BM25Encoder(analyzer, lexical.BM25Params(k1=meta.k1, b=meta.b, avgdl=meta.avgdl),
                               max_query_terms=max_query_terms)


def build_points(incidents: Sequence[Incident], encoder: TextEncoder, bm25: lexical.BM25Encoder, *,
                 dense_text: DenseText, batch_size: int = MAX_RUN_ROWS) -> tuple[list[IndexPoint], tuple[bool, ...]]:
    """Points for `incidents` (dense vectors as the bundle's `dense_text` says), and for each whether its
    text was cut at the model's max length."""
    encoded = dense_text.embed(encoder, [(i.short_description, i.description) for i in incidents], batch_size)
    points = [
        IndexPoint(point_id=inc.point_id, dense=encoded.vectors[row],
                   sparse=bm25.document(inc.short_description, inc.description), payload=inc.payload())
        for row, inc in enumerate(incidents)
    ]
    return points, encoded.cut


def missing_incidents(store: IncidentStore, incidents: Sequence[Incident], page: int = 256) -> list[Incident]:
    """The incidents `store` does not hold as given: absent, or stored with other fields (in their order)."""
    missing: list[Incident] = []
    for start in range(0, len(incidents), page):
        chunk = incidents[start : start + page]
        stored = {s.point_id: s.payload for s in store.fetch([i.point_id for i in chunk], with_vectors=False)}
        missing += [i for i in chunk if stored.get(i.point_id) != i.payload()]
    return missing


def index_into_catalog(incidents: Sequence[Incident], bundle: Bundle, encoder: TextEncoder, catalog: IndexCatalog,
                       page_size: int = PAGE_SIZE, progress: bool = True,
                       avgdl_corpus: Sequence[Incident] | None = None,
                       new_version: bool = False) -> tuple[IndexMeta, int]:
    """Upsert into the active index version; with none yet (or `new_version`), build a version and switch to it
    once complete. Returns the index metadata and the incident count. `avgdl_corpus`: the incidents a new index
    version takes its average document length from (default `incidents`; the quickstart indexes a first part
    of the sample and gives the whole sample here, so BM25 is the same as if all were indexed at once). A lost
    index pointer raises PointerLostError unless `new_version`: never a fresh index over existing data."""
    active = None if new_version else catalog.active()
    if active is not None:
        store = catalog.open(active)
        try:
            meta = index_incidents(incidents, bundle, encoder, store, page_size=page_size, progress=progress)
            return meta, store.count()
        finally:
            store.close()
    name = new_index_version(bundle)
    store = catalog.create(name)
    try:
        meta = index_incidents(incidents, bundle, encoder, store, page_size=page_size, progress=progress,
                               index_version=name, avgdl_corpus=avgdl_corpus)
        count = store.count()
    except BaseException:
        store.close()
        catalog.drop(name)
        raise
    store.close()
    catalog.mark_complete(name)
    catalog.switch(name, bundle.model_version)
    return meta, count


def index_incidents(incidents: Sequence[Incident], bundle: Bundle, encoder: TextEncoder, store: IncidentStore,
                    page_size: int = PAGE_SIZE, progress: bool = True, index_version: str | None = None,
                    avgdl_corpus: Sequence[Incident] | None = None) -> IndexMeta:
    """Encode and upsert incidents, `page_size` at a time (sorted by token length within a page; the encoder sizes
    its runs by its token budget). Point ids derive from the incident number: re-running is idempotent."""
    meta = open_or_create_index(store, bundle, incidents if avgdl_corpus is None else avgdl_corpus, index_version)
    bm25 = bm25_encoder_for(meta)
    truncated = 0
    batches = [incidents[start : start + page_size] for start in range(0, len(incidents), page_size)]
    # The next batch is encoded (ONNX Runtime, outside the GIL) while this one is written to the store.
    with steps.step(f"encode and store {len(incidents)} incidents"), \
            tqdm(total=len(incidents), desc="indexing incidents", unit="inc", disable=not progress) as bar, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-encode") as pool:
        def encode(batch: Sequence[Incident]) -> Future[tuple[list[IndexPoint], tuple[bool, ...]]]:
            return pool.submit(build_points, batch, encoder, bm25, dense_text=bundle.dense_text,
                               batch_size=MAX_RUN_ROWS)

        pending = encode(batches[0]) if batches else None
        try:
            for k, batch in enumerate(batches):
                assert pending is not None
                points, cut = pending.result()
                pending = encode(batches[k + 1]) if k + 1 < len(batches) else None
                truncated += sum(cut)
                store.upsert(points)
                bar.update(len(batch))
        finally:
            if pending is not None:
                pending.cancel()
    with steps.step("optimize the index (HNSW graph)"):
        store.optimize()
    logger.info("indexed %d incidents into %s (%d truncated at %d tokens); index now holds %d",
                len(incidents), meta.index_version, truncated, bundle.max_seq_length, store.count())
    return meta
