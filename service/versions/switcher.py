"""Model hot-swap and rollback: the public face of the index-version lifecycle. No HTTP here; the admin routes
and the CLI call `activate`, `rollback`, `status`, `wait`, and compaction holds `exclusive`.

1. The bundle is validated (checksums, parity) and the disk checked for room before anything starts; a bad
   one is refused and the current version keeps serving.
2. A new index version is built by re-embedding every stored incident (service/versions/rebuild.py) while
   writes go to both versions; it is verified, then committed (service/versions/commit.py).
3. Rollback switches back to the newest other complete version and its bundle (service/versions/rollback.py),
   catching up what it missed while writes go on; the write lock is held only for the last short catch-up.
A failure removes the half-built version; a crash leaves it to be removed at the next start."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from indexing.bundle import Bundle, load_bundle
from indexing.errors import SwapInProgressError, SwapRefusedError
from indexing.store.base import rebuild_in_progress
from service.metrics import Metrics
from service.settings import Settings
from service.versions.context import VersionContext

if TYPE_CHECKING:
    from service.engine import Engine

logger = logging.getLogger(__name__)


@dataclass
class RebuildStatus:
    state: str = "idle"  # idle | building | switched | failed | rolled_back
    model_version: str | None = None
    index_version: str | None = None
    previous_model_version: str | None = None
    total: int = 0
    done: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    swap_seconds: float | None = None
    self_retrieval: float | None = None
    replayed: int | None = None  # rollback: writes the version rolled back to had missed, replayed into it
    stall_seconds: float | None = None  # rollback: how long incident writes waited for its final catch-up
    reused_index: bool | None = None  # a threshold-only switch: the serving index version, nothing re-embedded
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        done = 1.0 if self.state in ("switched", "rolled_back") else 0.0
        data["progress"] = round(min(self.done / self.total, 1.0), 4) if self.total else done
        return data


@dataclass(frozen=True)
class SwitcherOptions:
    page_size: int = 256  # incidents re-embedded per page
    retain: int = 2  # index versions kept (active + rollback targets)
    verify_sample: int = 20  # incidents whose own text must find them in the new version's top 5
    min_self_retrieval: float = 0.9
    replica_grace_s: float = 2.0  # shared catalog: wait after telling the other replicas before copying

    @classmethod
    def from_settings(cls, settings: Settings) -> SwitcherOptions:
        return cls(page_size=settings.rebuild_page_size, retain=settings.index_versions_kept,
                   replica_grace_s=settings.replica_grace_s)


class ModelSwitcher:
    def __init__(self, engine: Engine, metrics: Metrics | None = None, options: SwitcherOptions | None = None,
                 **overrides: Any) -> None:
        """`overrides`: single SwitcherOptions fields (tests, benchmarks), e.g. page_size=16."""
        if engine.catalog is None or engine.registry is None:
            raise SwapRefusedError("this engine has no index catalog or bundle registry (store unreachable?)")
        self.options = replace(options or SwitcherOptions(), **overrides)
        self.context = VersionContext(engine.versions, engine.catalog, engine.registry, engine.options.encoders,
                                      engine.replicas.replica_id, metrics)
        self.catalog = engine.catalog
        self._status = RebuildStatus()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._exclusive: str | None = None  # other index work that must not overlap a switch (a compaction)

    def status(self) -> RebuildStatus:
        return self._status

    @contextlib.contextmanager
    def exclusive(self, what: str) -> Iterator[None]:
        """Hold off model switches and rollbacks while `what` (e.g. an index compaction) runs; refused with
        SwapInProgressError while a rebuild or other such work runs."""
        with self._guard:
            self._refuse_if_busy()
            self._exclusive = what
        try:
            yield
        finally:
            with self._guard:
                self._exclusive = None

    def _refuse_if_busy(self) -> None:  # call with _guard held
        if self._thread is not None and self._thread.is_alive():
            raise SwapInProgressError(f"a rebuild for {self._status.model_version} is running "
                                      f"({self._status.done}/{self._status.total}); wait for it")
        if self._exclusive is not None:
            raise SwapInProgressError(f"{self._exclusive} is running; try again when it has finished")
        if self.catalog.shared:
            other = self.catalog.control()
            if rebuild_in_progress(other) and other.get("owner") != self.context.replica_id:
                raise SwapInProgressError(f"another replica is rebuilding index {other['rebuilding']} for "
                                          f"{other.get('model_version')} (since {other.get('started_at')}); wait "
                                          "for it")

    def activate(self, model_version: str, background: bool = True) -> RebuildStatus:
        """Validate the bundle and the room on disk now (BundleError, NotWritableError), then rebuild and switch.
        A bundle written as a threshold-only change of the serving one (a live recalibration) switches at once on
        the serving index instead (`switch_threshold`)."""
        from service.versions.rebuild import run_rebuild
        from service.versions.threshold import is_threshold_only, scoring_differences

        with self._guard:
            self._refuse_if_busy()  # refused at once, before the bundle is hashed
        bundle = load_bundle(self.context.registry.path_of(model_version))  # checksums + parity, outside the guard
        if is_threshold_only(bundle) and bundle.model_version != self.context.versions.current.bundle.model_version \
                and not scoring_differences(self.context.versions.current.bundle, bundle):
            return self.switch_threshold(model_version, bundle)
        with self._guard:
            self._refuse_if_busy()
            versions = self.context.versions
            if bundle.model_version == versions.current.bundle.model_version:
                raise SwapRefusedError(f"{model_version} is already serving")
            current = versions.current.index_name
            self.catalog.check_room(self.catalog.size_of(current) if current else 0)  # room for the new copy
            self._status = RebuildStatus(state="building", model_version=bundle.model_version,
                                         previous_model_version=versions.current.bundle.model_version,
                                         started_at=datetime.now(UTC).isoformat())
            self.context.set_progress(0.0)
            if background:
                self._thread = threading.Thread(target=run_rebuild, args=(self.context, self.options, bundle,
                                                                          self._status), name="rebuild", daemon=True)
                self._thread.start()
            else:
                run_rebuild(self.context, self.options, bundle, self._status)
            return self._status

    def switch_threshold(self, model_version: str, bundle: Bundle | None = None) -> RebuildStatus:
        """Serve `model_version`, a bundle that differs from the serving one only in its threshold, on the serving
        index version: no rebuild, nothing re-embedded (service/versions/threshold.py); SwapRefusedError otherwise."""
        from service.versions.threshold import switch_threshold

        bundle = bundle or load_bundle(self.context.registry.path_of(model_version))
        with self._guard:
            self._refuse_if_busy()
            self._status = switch_threshold(self.context, bundle)
            return self._status

    def wait(self, timeout: float | None = None) -> RebuildStatus:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._status

    def rollback(self) -> RebuildStatus:
        """Switch back to the newest other complete index version whose bundle is in the registry."""
        from service.versions.rollback import roll_back

        with self._guard:
            self._refuse_if_busy()
            self._status = roll_back(self.context)
            return self._status

    def retention(self) -> list[str]:
        """Drop index versions no longer kept (service/versions/retention.py); returns their names."""
        return self.context.retention(self.options.retain)
