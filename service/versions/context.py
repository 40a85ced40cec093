"""What every lifecycle operation (rebuild, rollback, compaction) works with, handed over once: the serving
set, the catalog and registry, how encoders are made, and where progress and outcomes are reported."""

from __future__ import annotations

from dataclasses import dataclass

from indexing.registry import BundleRegistry
from indexing.store.base import IndexCatalog
from service.metrics import Metrics
from service.versions.commit import commit
from service.versions.retention import apply_retention
from service.versions.serving import EncoderOptions, ServingVersion
from service.versions.state import VersionSet


@dataclass(frozen=True)
class VersionContext:
    versions: VersionSet
    catalog: IndexCatalog
    registry: BundleRegistry
    encoders: EncoderOptions
    replica_id: str  # names this replica's rebuild in a shared catalog's control record
    metrics: Metrics | None = None

    def commit(self, target: ServingVersion, model_switch: bool = True, retire: bool = True) -> ServingVersion:
        """The one commit protocol (service/versions/commit.py); call with the write lock held."""
        return commit(self.versions, self.catalog, self.registry, target, model_switch, retire)

    def retention(self, retain: int) -> list[str]:
        with self.versions.write_lock:
            return apply_retention(self.versions, self.catalog, retain)

    def set_progress(self, ratio: float) -> None:
        if self.metrics is not None:
            self.metrics.rebuild_progress.set(min(max(ratio, 0.0), 1.0))

    def observe_swap(self, result: str, seconds: float | None = None) -> None:
        if self.metrics is not None:
            self.metrics.swaps.labels(result=result).inc()
            if seconds is not None:
                self.metrics.swap_duration.observe(seconds)
