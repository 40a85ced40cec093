"""The one commit protocol of every switch (model switch, rollback, compaction), under the write lock:

1. (a model switch) the registry pointer moves: a failure here changes nothing;
2. the index pointer names the new index version *and* the bundle that serves with it: the commit point
   (`IndexCatalog.switch`; the pointer is written before its `.bak` copy, indexing/pointer.py). A failure here
   puts the registry pointer back;
3. the process swaps to the new version, so it never serves one version while the disk names another, and every
   write acknowledged from now on goes where a restart will look.

A crash between 1 and 2 leaves the registry one step ahead of the index pointer: the next start serves what the
index pointer names (model and index together) and puts the registry pointer back in step
(service/wiring.build_engine), so no crash can pair a model with another model's index."""

from __future__ import annotations

import logging

from indexing import failpoints
from indexing.registry import BundleRegistry
from indexing.store.base import IndexCatalog
from service.versions.serving import ServingVersion
from service.versions.state import VersionSet

logger = logging.getLogger(__name__)


def commit(versions: VersionSet, catalog: IndexCatalog, registry: BundleRegistry, target: ServingVersion,
           model_switch: bool = True, retire: bool = True) -> ServingVersion:
    """Make `target` serve (call with the write lock held); returns the version it replaced (kept for a rollback
    unless `retire` is False: a threshold-only switch, whose versions share one store)."""
    assert target.index_name is not None
    before = registry.active_version() if model_switch else None
    if model_switch:
        registry.set_active(target.bundle.model_version)
        failpoints.pause("switch.between_pointers")
    try:
        catalog.switch(target.index_name, target.bundle.model_version)  # the commit point
    except BaseException:
        if before is not None:
            try:
                registry.set_active(before)
            except Exception:  # the index pointer decides what serves; the next start repairs the registry
                logger.exception("could not put the registry pointer back to %s", before)
        raise
    return versions.swap(target, retire)
