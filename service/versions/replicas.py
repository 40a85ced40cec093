"""Several service replicas on one Qdrant server: each follows a rebuild or a switch another one made, through
the catalog's shared control record and alias (a no-op for the embedded store, which one process owns)."""

from __future__ import annotations

import logging
import time
import uuid

from indexing.bundle import load_bundle
from indexing.errors import BundleError, StoreUnavailableError
from indexing.registry import BundleRegistry
from indexing.store.base import IndexCatalog, rebuild_in_progress
from service.versions.serving import EncoderOptions, ServingVersion
from service.versions.state import VersionSet

logger = logging.getLogger(__name__)


class ReplicaFollower:
    def __init__(self, versions: VersionSet, catalog: IndexCatalog | None, registry: BundleRegistry | None,
                 encoders: EncoderOptions, follow_interval_s: float = 2.0) -> None:
        self.versions = versions
        self.catalog = catalog
        self.registry = registry
        self.encoders = encoders
        self.follow_interval_s = follow_interval_s  # how stale a read may be about another replica's switch
        self.replica_id = uuid.uuid4().hex  # names this replica's own rebuild in the shared control record
        self._followed_at = float("-inf")
        self._opened: ServingVersion | None = None  # the other replica's rebuild target this one writes to
        self._model_checked_at = float("-inf")

    def follow(self, strict: bool) -> None:
        """A rebuild elsewhere: open its new version so this replica's writes go to both (every write checks:
        `strict`). The index alias moved elsewhere: swap to that version and its bundle. Reads check at most every
        `follow_interval_s` seconds, so an answer uses the old model for at most that long after a switch."""
        catalog = self.catalog
        if catalog is None or not catalog.shared:
            return
        if not strict and time.monotonic() - self._followed_at < self.follow_interval_s:
            return
        versions = self.versions
        with versions.write_lock:
            self._followed_at = time.monotonic()
            try:
                control = catalog.control()
                active = catalog.active()
            except StoreUnavailableError:
                if strict:
                    raise
                return
            building = rebuild_in_progress(control)
            ours = versions.rebuild_target
            if control.get("owner") == self.replica_id:
                return  # our own rebuild: this replica's switcher keeps its state
            if active is not None and active != versions.current.index_name:
                target = ours if ours is not None and ours.index_name == active else self.open_version(active)
                logger.info("another replica switched to index %s (model %s): following", active,
                            target.bundle.model_version)
                versions.swap(target)
                versions.set_rebuild_target(None)
                ours = None
            elif active is not None and not building:
                self._follow_threshold_switch()
            if building and building != active and (ours is None or ours.index_name != building):
                self._opened = self.open_version(building, str(control.get("model_version") or ""))
                versions.set_rebuild_target(self._opened)
                logger.info("another replica is rebuilding index %s for model %s: writes go to it as well",
                            building, str(control.get("model_version") or "?"))
            elif not building and ours is not None and ours is self._opened:  # only a target it followed
                logger.info("the rebuild of %s ended elsewhere without a switch: writes go to %s only",
                            ours.index_name, versions.current.index_name)
                versions.set_rebuild_target(None)

    def _follow_threshold_switch(self) -> None:
        """Another replica made a threshold-only switch: the alias still names the serving index version, its
        record names another bundle (checked at most every `follow_interval_s`). Call with the write lock held."""
        assert self.catalog is not None and self.registry is not None
        if time.monotonic() - self._model_checked_at < self.follow_interval_s:
            return
        self._model_checked_at = time.monotonic()
        try:
            recorded = self.catalog.active_model()
            current = self.versions.current
            if not recorded or recorded == current.bundle.model_version:
                return
            target = current.sharing(load_bundle(self.registry.path_of(recorded)))
        except (StoreUnavailableError, BundleError) as exc:  # tried again at the next check
            logger.warning("could not follow the bundle the index pointer names: %s", exc)
            return
        target.searcher()  # the recorded bundle must fit this index (it does: a switch checked it)
        logger.info("another replica switched the threshold: model %s (threshold %.4f) on index %s: following",
                    recorded, target.bundle.threshold, current.index_name)
        self.versions.swap(target, retire=False)

    def open_version(self, name: str, model_version: str = "") -> ServingVersion:
        assert self.catalog is not None and self.registry is not None
        if not model_version:  # the alias target serves with the bundle its switch recorded
            recorded = self.catalog.active_model() if name == self.catalog.active() else None
            model_version = recorded or self.catalog.model_of(name)
        bundle = load_bundle(self.registry.path_of(model_version))
        return ServingVersion(bundle, self.encoders.encoder_for(bundle), self.catalog.open(name), name,
                              self.versions.current.candidate_k)
