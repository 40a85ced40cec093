"""Background compaction of the serving index (Qdrant Edge). No HTTP here; the app starts it, the admin
routes and the CLI can run one now.

Qdrant Edge builds HNSW and vacuums deletes only when asked, and asking (`optimize()`) holds the Python
GIL, so every request, for its whole run. Incidents pushed through the API therefore pile up in an
unindexed segment and deletes are never vacuumed. A compaction makes a freshly built copy instead:

1. Under the model switcher's `exclusive` (no switch or rollback meanwhile), with room on disk for the copy,
   the serving set starts its write journal: the point id of every incident written from now on.
2. A new index version of the same model is filled with the stored points of the serving one, vectors
   and all (no re-embedding), page by page; each page is one short store call, so requests interleave.
3. It is closed and optimized in a child process at lower CPU priority (`IndexCatalog.optimize_apart`),
   then reopened.
4. Catch-up: the incidents in the journal are copied again from the serving version (deleted ones are
   deleted), first without the write lock, then the rest under it; the counts must agree. Then the one
   commit protocol (service/versions/commit.py) moves the index pointer and the process swaps, all under the
   write lock, so no acknowledged write is missed. A request already running finishes on the old version,
   which is closed and dropped after `drain_s`.

A failure or a crash leaves the serving version untouched; the half-built copy is removed (at the next
start at the latest, as for a rebuild). A Qdrant server optimizes by itself: there the compactor is off."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from indexing import failpoints
from indexing.errors import IncidentSimError, SwapInProgressError
from indexing.indexer import new_index_version
from indexing.migrate import copy_all, copy_ids
from indexing.store.base import IncidentStore
from service.metrics import Metrics
from service.versions.serving import ServingVersion
from service.versions.switcher import ModelSwitcher

if TYPE_CHECKING:
    from service.engine import Engine

logger = logging.getLogger(__name__)



@dataclass
class CompactionStatus:
    state: str = "idle"  # idle | copying | optimizing | catching_up | done | failed | skipped
    reason: str | None = None  # why it ran: writes | idle | requested
    source_index_version: str | None = None
    index_version: str | None = None
    incidents: int = 0
    copied: int = 0
    caught_up: int = 0  # journal entries re-copied after the bulk copy
    optimize_seconds: float | None = None
    total_seconds: float | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CompactionPolicy:
    """When the background thread compacts: after `after_writes` incident writes, or after `idle_writes`
    writes followed by `idle_s` seconds without one. `after_writes` 0 turns the thread off."""

    after_writes: int = 1000
    idle_writes: int = 50
    idle_s: float = 300.0
    check_s: float = 5.0

    def reason(self, writes: int, idle_for_s: float) -> str | None:
        if self.after_writes <= 0 or writes <= 0:
            return None
        if writes >= self.after_writes:
            return "writes"
        if writes >= self.idle_writes and idle_for_s >= self.idle_s:
            return "idle"
        return None


class IndexCompactor:
    def __init__(self, engine: Engine, switcher: ModelSwitcher, metrics: Metrics | None = None,
                 policy: CompactionPolicy | None = None, drain_s: float = 30.0,
                 optimize_timeout_s: float = 3600.0, postpone: Callable[[], str | None] | None = None) -> None:
        """`postpone`: says why the background thread should wait (e.g. a bulk background indexing still
        running: one compaction at its end, not one per 1,000 of its writes), or None."""
        self.versions = engine.versions
        self.postpone = postpone
        self._postponed_for: str | None = None
        self.switcher = switcher
        self.catalog = switcher.catalog
        self.metrics = metrics
        self.policy = policy or CompactionPolicy()
        self.drain_s = drain_s
        self.optimize_timeout_s = optimize_timeout_s
        self._status = CompactionStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return not self.catalog.self_optimizing

    def status(self) -> CompactionStatus:
        return self._status

    # -- the background thread -----------------------------------------------------------------
    def start(self) -> None:
        if not self.enabled or self.policy.after_writes <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="index-compactor", daemon=True)
        self._thread.start()
        logger.info("index compaction on: after %d incident writes, or %d writes and %.0f s idle",
                    self.policy.after_writes, self.policy.idle_writes, self.policy.idle_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.release_drained(force=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.policy.check_s):
            self.release_drained()
            reason = self.policy.reason(self.versions.writes_since_build,
                                        time.monotonic() - self.versions.last_write_at)
            if reason is None:
                continue
            waiting = self.postpone() if self.postpone is not None else None
            if waiting is not None:
                if waiting != self._postponed_for:
                    logger.info("compaction due (%s) but postponed while %s", reason, waiting)
                self._postponed_for = waiting
                continue
            self._postponed_for = None
            try:
                self.compact(reason)
            except SwapInProgressError as exc:  # a model switch is running: it builds a fresh index anyway
                logger.info("compaction postponed: %s", exc)
            except Exception:  # logged with the status; the serving version is untouched
                logger.debug("compaction failed", exc_info=True)

    # -- one compaction ------------------------------------------------------------------------
    def compact(self, reason: str = "requested") -> CompactionStatus:
        """Build a compacted copy of the serving version and switch to it (blocking). Raises
        SwapInProgressError while a model switch runs, IncidentSimError subclasses when it fails."""
        if not self.enabled:
            self._status = CompactionStatus(state="skipped", reason=reason, error=(
                "the Qdrant server optimizes its collections by itself; nothing to compact"))
            return self._status
        if not self._lock.acquire(blocking=False):
            raise SwapInProgressError("an index compaction is already running; try again when it has finished")
        try:
            with self.switcher.exclusive("an index compaction"):
                return self._compact(reason)
        finally:
            self._lock.release()

    def _compact(self, reason: str) -> CompactionStatus:
        t0 = time.perf_counter()
        versions = self.versions
        source = versions.current
        meta = source.store.meta()
        if meta is None:
            raise IncidentSimError("no index to compact yet")
        if source.index_name is not None:  # NotWritableError (503): a full disk is refused before anything starts
            self.catalog.check_room(self.catalog.size_of(source.index_name))
        name = new_index_version(source.bundle)
        status = self._status = CompactionStatus(state="copying", reason=reason, index_version=name,
                                                 source_index_version=source.index_version,
                                                 started_at=datetime.now(UTC).isoformat())
        with versions.write_lock:
            versions.start_journal()
            writes_before = versions.writes_since_build
        store: IncidentStore | None = None
        target: ServingVersion | None = None
        try:
            store = self.catalog.create(name)
            store.create_index(replace(meta, index_version=name, created_at=datetime.now(UTC).isoformat(),
                                       extra={**meta.extra, "compacted_from": meta.index_version}))
            logger.info("compacting index %s into %s (%s)", meta.index_version, name, reason)
            status.copied = copy_all(source.store, store)
            store.close()
            status.state = "optimizing"
            failpoints.pause("compaction.optimize")
            status.optimize_seconds = self.catalog.optimize_apart(name, self.optimize_timeout_s)
            store = self.catalog.open(name)
            target = ServingVersion(source.bundle, source.encoder, store, name, source.candidate_k)
            target.searcher()
            status.state = "catching_up"
            with versions.write_lock:  # most of the catch-up without the lock: writes go on meanwhile
                pending = versions.take_journal()
            status.caught_up = copy_ids(pending, source.store, store)
            failpoints.pause("compaction.before_switch")
            with versions.write_lock:
                pending = versions.stop_journal()
                status.caught_up += copy_ids(pending, source.store, store)
                expected, got = source.store.count(), store.count()
                if expected != got:
                    raise IncidentSimError(f"compacted index holds {got} incidents, the serving one {expected}")
                status.incidents = got
                self.catalog.mark_complete(name)
                self.switcher.context.commit(target, model_switch=False)  # same model: the registry stays
                versions.forget_writes(writes_before)
                versions.start_draining(source)
        except BaseException as exc:
            with versions.write_lock:
                versions.stop_journal()
            if store is not None:
                store.close()
            try:
                if name in self.catalog.versions() and name != self.catalog.active():
                    self.catalog.drop(name)
            except Exception:  # the next start removes incomplete versions
                logger.warning("could not remove index version %s", name, exc_info=True)
            status.state, status.error = "failed", str(exc)
            status.finished_at = datetime.now(UTC).isoformat()
            self._observe("failed", time.perf_counter() - t0)
            logger.error("compaction into %s failed (%s); %s keeps serving", name, exc, meta.index_version)
            raise
        status.state = "done"
        status.total_seconds = time.perf_counter() - t0
        status.finished_at = datetime.now(UTC).isoformat()
        self._observe("ok", status.total_seconds)
        logger.info("compacted index %s into %s: %d incidents, %d caught up, optimize %.1f s, total %.1f s",
                    meta.index_version, name, status.incidents, status.caught_up, status.optimize_seconds or 0.0,
                    status.total_seconds)
        return status

    def release_drained(self, force: bool = False) -> None:
        """Close and drop replaced versions once requests that held them have had `drain_s` to finish; a
        version still draining stays open and on disk (retention skips it)."""
        with self.versions.write_lock:
            drained = self.versions.release_drained(self.drain_s, force)
        if not drained:
            return
        try:
            self.switcher.retention()
        except Exception:
            logger.warning("could not drop replaced index versions %s", [v.index_name for v in drained],
                           exc_info=True)

    def _observe(self, result: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.compactions.labels(result=result).inc()
            self.metrics.compaction_duration.observe(seconds)
