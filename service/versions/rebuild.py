"""A model switch's rebuild: a new index version re-embedded with the new bundle beside the serving one.

1. Every stored incident is re-embedded from its stored text, page by page, outside the write lock; a page
   is written under the lock and only for incidents unchanged since read, while incident writes go to both
   versions (`rebuild_target`), so no update is lost or overwritten by a stale copy.
2. The new version is optimized in a child process (Qdrant Edge); meanwhile writes are journaled instead of
   dual-written and replayed into it afterwards.
3. Verification: a sampled self-retrieval check and, under the lock, the same incident count as the serving
   version; then the commit (service/versions/commit.py) and retention.
Any failure leaves the serving version untouched and removes the new one."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from tqdm import tqdm

from indexing import failpoints, lexical
from indexing.bundle import Bundle
from indexing.errors import IncidentSimError
from indexing.incidents import Incident
from indexing.indexer import new_index_version
from indexing.store.base import IndexMeta
from service.versions.context import VersionContext
from service.versions.reembed import copy_unchanged, reconcile, replay
from service.versions.serving import ServingVersion
from service.versions.switcher import RebuildStatus, SwitcherOptions

logger = logging.getLogger(__name__)


def run_rebuild(ctx: VersionContext, options: SwitcherOptions, bundle: Bundle, status: RebuildStatus) -> None:
    versions, catalog = ctx.versions, ctx.catalog
    name = new_index_version(bundle)
    status.index_version = name
    target: ServingVersion | None = None
    control: dict[str, str] = {}
    try:
        source = versions.current
        encoder = ctx.encoders.encoder_for(bundle)
        analyzer = lexical.Analyzer.from_name(bundle.bm25["analyzer"])
        status.total, avgdl = _survey(source, analyzer)
        store = catalog.create(name)
        store.create_index(IndexMeta(
            index_version=name, model_version=bundle.model_version, encoder_id=bundle.encoder_id,
            dim=bundle.dim, analyzer=analyzer.name, k1=float(bundle.bm25["k1"]), b=float(bundle.bm25["b"]),
            avgdl=avgdl, created_at=datetime.now(UTC).isoformat(), extra={"rebuilt_from": source.index_version}))
        target = ServingVersion(bundle, encoder, store, name, source.candidate_k)
        target.searcher()
        with versions.write_lock:
            if catalog.shared:  # the other replicas write to it too from their next write on; the record is
                # published before this replica's own writes go to the target, under the write lock, so this
                # replica's follower never sees a target without a record naming it as the owner
                control = {"rebuilding": name, "model_version": bundle.model_version, "owner": ctx.replica_id,
                           "started_at": datetime.now(UTC).isoformat()}
                catalog.set_control({**control, "heartbeat_at": control["started_at"]})
            versions.set_rebuild_target(target)  # from now on writes also go to the new version
        if catalog.shared:
            time.sleep(options.replica_grace_s)  # writes that checked before the record finish first
        logger.info("rebuilding index %s for model %s from %s (%d incidents)", name, bundle.model_version,
                    source.index_version, status.total)
        _copy_pages(ctx, options, source, target, status, control)
        _optimize(ctx, target, source)
        status.self_retrieval = _self_retrieval(target, options.verify_sample)
        if status.self_retrieval < options.min_self_retrieval:
            raise IncidentSimError(f"self-retrieval check failed: {status.self_retrieval:.2f} of sampled "
                                   f"incidents find themselves in the top 5 (need {options.min_self_retrieval})")
        if catalog.shared:
            # another replica's write that began before it saw the control record, and landed in the source only
            # after its page was copied: re-embed what differs (the other replicas dual-write by now)
            replayed = reconcile(source, target, versions.write_lock)
            if replayed:
                logger.info("reconciled %d incidents written by other replicas during the rebuild", replayed)
        t0 = time.perf_counter()
        with versions.write_lock:
            expected, got = source.store.count(), target.store.count()
            if expected != got:
                raise IncidentSimError(f"new index holds {got} incidents, the serving one {expected}")
            catalog.mark_complete(name)
            ctx.commit(target)
            versions.set_rebuild_target(None)
            if catalog.shared:
                catalog.set_control({})
        status.swap_seconds = time.perf_counter() - t0
        status.state = "switched"
        status.finished_at = datetime.now(UTC).isoformat()
        ctx.set_progress(1.0)
        ctx.observe_swap("ok", status.swap_seconds)
        logger.info("switched to model %s, index %s (%d incidents, swap %.1f ms)", bundle.model_version, name,
                    got, status.swap_seconds * 1000)
        ctx.retention(options.retain)
    except Exception as exc:  # any failure: the old version keeps serving, the new one is removed
        logger.exception("rebuild for %s failed; %s keeps serving", bundle.model_version,
                         versions.current.bundle.model_version)
        _abandon(ctx, name, target)
        status.state = "failed"
        status.error = str(exc)
        status.finished_at = datetime.now(UTC).isoformat()
        ctx.observe_swap("failed")


def _copy_pages(ctx: VersionContext, options: SwitcherOptions, source: ServingVersion, target: ServingVersion,
                status: RebuildStatus, control: dict[str, str]) -> None:
    offset: str | None = None
    bar = tqdm(total=status.total, desc=f"re-embedding for {target.bundle.model_version}", unit="inc",
               disable=None, leave=False)  # a terminal only: the service's JSON log gets no bars
    while True:
        page, offset = source.store.scroll(offset, options.page_size)
        copy_unchanged([(s.point_id, s.payload) for s in page], source, target, ctx.versions.write_lock)
        status.done += len(page)  # writes meanwhile may add incidents: progress is capped at 1
        bar.update(len(page))
        if ctx.catalog.shared:  # the others tell a live rebuild from one whose replica died
            ctx.catalog.set_control({**control, "heartbeat_at": datetime.now(UTC).isoformat()})
        ctx.set_progress(status.done / max(status.total, 1))
        if offset is None:
            break
    bar.close()


def _optimize(ctx: VersionContext, target: ServingVersion, source: ServingVersion) -> None:
    """Optimize the new version without holding this process (Qdrant Edge: in a child process). While it is
    closed for that, writes are journaled instead of dual-written, then replayed into it from the serving
    version (most of them outside the write lock); dual writes resume after."""
    assert target.index_name is not None
    versions = ctx.versions
    if ctx.catalog.self_optimizing:
        target.store.optimize()
        return
    with versions.write_lock:
        versions.set_rebuild_target(None)
        versions.start_journal()
    target.store.close()
    failpoints.pause("rebuild.optimize")
    ctx.catalog.optimize_apart(target.index_name)
    target.reopen(ctx.catalog.open(target.index_name))
    with versions.write_lock:
        pending = versions.take_journal()
    replay(pending, source, target)
    with versions.write_lock:
        replay(versions.stop_journal(), source, target)
        versions.set_rebuild_target(target)


def _abandon(ctx: VersionContext, name: str, target: ServingVersion | None) -> None:
    """The one failed-build clean-up: writes stop going to the new version, which is closed and removed (a crash
    leaves it to the next start, which removes incomplete versions)."""
    versions, catalog = ctx.versions, ctx.catalog
    with versions.write_lock:
        if versions.rebuild_target is target:
            versions.set_rebuild_target(None)
        versions.stop_journal()
    if catalog.shared:
        try:
            catalog.set_control({})  # the other replicas stop writing to the abandoned version
        except Exception:
            logger.warning("could not clear the replicas' control record", exc_info=True)
    if target is not None:
        target.store.close()
    try:
        if name in catalog.versions() and name != catalog.active():
            catalog.drop(name)
    except Exception:  # cleanup is best effort; the next start removes incomplete versions
        logger.warning("could not remove index version %s", name, exc_info=True)


def _survey(source: ServingVersion, analyzer: lexical.Analyzer) -> tuple[int, float]:
    """Count the stored incidents and their mean analysed length (avgdl of the new index), streaming."""
    count = 0

    def documents() -> Iterator[tuple[str, str]]:
        nonlocal count
        offset: str | None = None
        while True:
            page, offset = source.store.scroll(offset, 256)
            for s in page:
                count += 1
                yield str(s.payload.get("short_description", "")), str(s.payload.get("description", ""))
            if offset is None:
                return

    try:
        avgdl = lexical.average_document_length(analyzer, documents())
    except ValueError:  # an empty index: any positive avgdl will do
        avgdl = 1.0
    return count, avgdl


def _self_retrieval(target: ServingVersion, sample_size: int) -> float:
    """Share of sampled incidents whose own text finds them in the new index's top 5."""
    page, _ = target.store.scroll(None, 1000)
    if not page:
        return 1.0
    sample = random.Random(0).sample(page, min(sample_size, len(page)))
    searcher = target.searcher()
    found = 0
    for s in sample:
        incident = Incident.model_validate(s.payload)
        vector, _ = target.bundle.dense_text.embed_one(target.encoder, incident.short_description,
                                                       incident.description)
        top = searcher.search(vector, incident.text(), 5).results
        found += any(r.point_id == s.point_id for r in top)
    return found / len(sample)
