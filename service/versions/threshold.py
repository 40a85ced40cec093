"""A threshold-only switch: a bundle that differs from the serving one only in its threshold (and the record of how
it was chosen) serves on the serving index version as it is. Nothing is re-embedded: the new `ServingVersion`
shares the serving one's encoder, store and query cache (ServingVersion.sharing).

It goes through the one commit protocol (service/versions/commit.py): the registry pointer moves, then the index
pointer names the same index version with the new bundle (the commit point), then the process swaps. So a restart
serves what the pointer names, and the switch is recorded like any other. Rollback of a threshold-only bundle (one
written by a live recalibration: its manifest names the bundle it was derived from under `threshold_only`) is a
threshold-only switch back to that bundle (service/versions/rollback.py)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from indexing.bundle import Bundle, load_bundle
from indexing.errors import BundleError, SwapInProgressError, SwapRefusedError
from service.flag.recalibrate import THRESHOLD_ONLY_KEY
from service.versions.context import VersionContext
from service.versions.switcher import RebuildStatus

logger = logging.getLogger(__name__)

# manifest keys a threshold-only bundle may change: everything else (files, encoder, tokenizer, hybrid weights, BM25
# parameters and normalisation, dense text) decides what a score is, so it must be identical
THRESHOLD_KEYS = frozenset({"model_version", "created_at", "derived_from", "threshold", "evaluation",
                            THRESHOLD_ONLY_KEY})


def scoring_differences(a: Bundle, b: Bundle) -> list[str]:
    """The manifest keys in which `a` and `b` differ beyond the threshold: empty when they score identically."""
    keys = (set(a.manifest) | set(b.manifest)) - THRESHOLD_KEYS
    diffs = sorted(k for k in keys if a.manifest.get(k) != b.manifest.get(k))
    if not diffs and a.encoder_id != b.encoder_id:  # the manifests agree, so this cannot happen; checked anyway
        diffs.append("encoder_id")
    return diffs


def is_threshold_only(bundle: Bundle) -> bool:
    """Written as a threshold-only change (a live recalibration): activation reuses the serving index for it."""
    return bool((bundle.manifest.get(THRESHOLD_ONLY_KEY) or {}).get("from"))


def threshold_parent(ctx: VersionContext) -> Bundle | None:
    """The bundle the serving threshold-only bundle was derived from, when it is still in the registry, intact and
    scores like it (its rollback target on the same index); None otherwise."""
    current = ctx.versions.current.bundle
    parent = (current.manifest.get(THRESHOLD_ONLY_KEY) or {}).get("from")
    if not parent:
        return None
    try:
        bundle = load_bundle(ctx.registry.path_of(str(parent)))
    except BundleError as exc:
        logger.warning("threshold-only bundle %s: its parent %s cannot serve (%s)", current.model_version, parent,
                       exc)
        return None
    return bundle if not scoring_differences(current, bundle) else None


def switch_threshold(ctx: VersionContext, bundle: Bundle, state: str = "switched") -> RebuildStatus:
    """Make `bundle` serve on the serving index version (SwapRefusedError unless it scores like the serving one).
    `state`: what the status says afterwards (switched, or rolled_back)."""
    versions = ctx.versions
    current = versions.current
    if bundle.model_version == current.bundle.model_version:
        raise SwapRefusedError(f"{bundle.model_version} is already serving")
    diffs = scoring_differences(current.bundle, bundle)
    if diffs:
        raise SwapRefusedError(f"{bundle.model_version} differs from the serving {current.bundle.model_version} "
                               f"in {', '.join(diffs)}, not only its threshold: it needs a rebuild (activate it)")
    target = current.sharing(bundle)
    target.searcher()  # checks the index against the bundle before anything moves
    t0 = time.perf_counter()
    with versions.write_lock:
        if versions.current is not current or versions.rebuild_target is not None:
            raise SwapInProgressError("the serving version changed, or a rebuild started, meanwhile; try again")
        ctx.commit(target, retire=False)  # the same store serves on: nothing to keep open for a rollback
    seconds = time.perf_counter() - t0
    ctx.observe_swap("ok" if state == "switched" else "rollback", seconds)
    logger.info("threshold-only switch to %s (threshold %.4f, was %.4f from %s) on index %s in %.1f ms",
                bundle.model_version, bundle.threshold, current.bundle.threshold, current.bundle.model_version,
                target.index_name, seconds * 1000)
    now = datetime.now(UTC).isoformat()
    return RebuildStatus(state=state, model_version=bundle.model_version, index_version=target.index_version,
                         previous_model_version=current.bundle.model_version, started_at=now, finished_at=now,
                         swap_seconds=seconds, reused_index=True)
