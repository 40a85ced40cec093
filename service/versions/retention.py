"""Which index versions stay on disk: the active one and the `retain - 1` newest other complete ones (rollback
targets, by the creation time in their metadata, never by name). Versions of the serving model that a
compaction replaced are no rollback target: dropped once they no longer drain."""

from __future__ import annotations

import logging

from indexing.store.base import IndexCatalog
from service.versions.state import VersionSet

logger = logging.getLogger(__name__)


def apply_retention(versions: VersionSet, catalog: IndexCatalog, retain: int) -> list[str]:
    """Drop what is no longer kept; returns the dropped names. Call with the write lock held."""
    active = catalog.active()
    serving = versions.current.bundle.model_version
    draining = versions.draining_names()
    others = catalog.by_age(n for n, complete in catalog.versions().items()
                            if complete and n != active and n not in draining)
    superseded = [n for n in others if catalog.model_of(n) == serving]
    others = [n for n in others if n not in superseded]
    dropped = superseded + others[max(retain - 1, 0):]
    for name in dropped:
        versions.forget_retired(name)
        catalog.drop(name)
    return dropped
