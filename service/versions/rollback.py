"""Rollback: switch back to the newest other complete index version whose bundle is in the registry.

That version stopped receiving writes when it stopped serving, so it is caught up first: with the write
journal on, everything it lacks or holds in another state is re-embedded from the serving version *outside*
the write lock (pushes go on meanwhile); then, under the lock, only what was written during that catch-up is
replayed and the commit follows (after up to CATCH_UP_PASSES passes outside the lock while many writes
arrived meanwhile). Incident writes wait only for that last part (`stall_seconds`)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from indexing import failpoints
from indexing.bundle import load_bundle
from indexing.errors import BundleError, SwapRefusedError
from service.versions.context import VersionContext
from service.versions.reembed import differences, replay
from service.versions.serving import ServingVersion
from service.versions.switcher import RebuildStatus

logger = logging.getLogger(__name__)
CATCH_UP_PASSES = 5  # journal passes outside the write lock before the final one under it
FINAL_PASS_MAX = 32  # few enough incidents to re-embed while writes wait


def roll_back(ctx: VersionContext) -> RebuildStatus:
    from service.versions.threshold import switch_threshold, threshold_parent

    parent = threshold_parent(ctx)  # a threshold-only bundle serves: back to the one it was derived from, same index
    if parent is not None:
        return switch_threshold(ctx, parent, state="rolled_back")
    current = ctx.versions.current
    candidates = [n for n, complete in ctx.catalog.versions().items()
                  if complete and n != current.index_name and ctx.catalog.model_of(n) != current.bundle.model_version]
    for name in ctx.catalog.by_age(candidates):
        kept = ctx.versions.kept(name)
        if kept is not None:  # still loaded
            return _switch_back(ctx, kept, current)
        store = ctx.catalog.open(name)
        meta = store.meta()
        try:
            bundle = load_bundle(ctx.registry.path_of(meta.model_version)) if meta else None
        except BundleError:
            bundle = None
        if bundle is None or meta is None or bundle.encoder_id != meta.encoder_id:
            store.close()
            continue
        target = ServingVersion(bundle, ctx.encoders.encoder_for(bundle), store, name, current.candidate_k)
        return _switch_back(ctx, target, current)
    raise SwapRefusedError("no earlier complete index version with its bundle in the registry to roll back to")


def _switch_back(ctx: VersionContext, target: ServingVersion, current: ServingVersion) -> RebuildStatus:
    target.searcher()  # checks the index against the bundle before anything moves
    versions = ctx.versions
    t0 = time.perf_counter()
    with versions.write_lock:
        versions.start_journal()
    try:
        stale, gone = differences(current, target)
        failpoints.pause("rollback.catch_up")
        replayed = replay([*stale, *gone], current, target)  # outside the lock: writes are journaled meanwhile
        for _ in range(CATCH_UP_PASSES):  # what was written meanwhile, again outside the lock, while it is much
            with versions.write_lock:
                pending = versions.take_journal()
            if len(pending) <= FINAL_PASS_MAX:
                with versions.write_lock:  # put back: the final pass under the lock takes them
                    versions.record_journaled(pending)
                break
            replayed += replay(pending, current, target)
        waited = time.perf_counter()
        with versions.write_lock:
            replayed += replay(versions.stop_journal(), current, target)
            ctx.commit(target)
        stall = time.perf_counter() - waited
    except BaseException:
        with versions.write_lock:
            versions.stop_journal()
        raise
    status = RebuildStatus(state="rolled_back", model_version=target.bundle.model_version,
                           index_version=target.index_version, previous_model_version=current.bundle.model_version,
                           replayed=replayed, stall_seconds=round(stall, 4), finished_at=datetime.now(UTC).isoformat(),
                           swap_seconds=time.perf_counter() - t0)
    ctx.observe_swap("rollback", status.swap_seconds)
    logger.info("rolled back to model %s, index %s: %d incident writes replayed, writes waited %.1f ms",
                target.bundle.model_version, target.index_name, replayed, stall * 1000)
    return status
