"""Indexing incidents in the background while the service already answers (the quickstart serves once a first
part of the sample is indexed). Every page goes through `Engine.upsert_incidents`, the path of
`PUT /incidents`: the same write lock, both versions during a model switch, the compaction's write count and
journal. An incident is one point (vectors and fields together), so a query sees it whole or not at all."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from indexing.errors import IncidentSimError, StoreUnavailableError
from indexing.incidents import Incident
from indexing.steps import format_seconds
from service.engine import Engine

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexingProgress:
    indexed: int
    total: int
    state: str  # running | done | failed | stopped
    error: str | None = None

    @property
    def filling(self) -> bool:
        return self.state == "running"


class BackgroundIndexer:
    """Writes `incidents` page by page on a daemon thread; `progress()` says how far it has got."""

    def __init__(self, engine: Engine, incidents: Sequence[Incident], page_size: int = 32,
                 retry_s: float = 5.0, started_at: float | None = None) -> None:
        self.engine = engine
        self.incidents = list(incidents)
        self.page_size = page_size
        self.retry_s = retry_s
        self.started_at = started_at  # epoch seconds the whole job started (the quickstart's own start), if known
        self._indexed = 0
        self._state = "running" if self.incidents else "done"
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-indexing", daemon=True)

    def start(self) -> None:
        if self.incidents:
            logger.info("indexing %d more incidents in the background; the service answers meanwhile (answers say "
                        "the index is still being filled)", len(self.incidents))
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def progress(self) -> IndexingProgress:
        return IndexingProgress(self._indexed, len(self.incidents), self._state, self._error)

    def _run(self) -> None:
        t0 = time.monotonic()
        with tqdm(total=len(self.incidents), desc="indexing in the background", unit="inc", leave=False,
                  disable=None) as bar:
            for start in range(0, len(self.incidents), self.page_size):
                page = self.incidents[start : start + self.page_size]
                if not self._write(page):
                    return
                self._indexed += len(page)
                bar.update(len(page))
                if self._indexed % (self.page_size * 16) < self.page_size:
                    logger.info("background indexing: %d of %d incidents", self._indexed, len(self.incidents))
        self._state = "done"
        since = "" if self.started_at is None else f", {format_seconds(time.time() - self.started_at)} after start"
        logger.info("background indexing done: %d incidents in %s%s", self._indexed,
                    format_seconds(time.monotonic() - t0), since)

    def _write(self, page: list[Incident]) -> bool:
        """Write one page, retrying while the store is unavailable; False when stopped or failed."""
        while not self._stop.is_set():
            try:
                for incident in page:
                    self.engine.check_incident(incident)
                self.engine.upsert_incidents(page)
                return True
            except StoreUnavailableError as exc:
                logger.warning("background indexing: store unavailable (%s); retrying in %.0f s", exc, self.retry_s)
                self._stop.wait(self.retry_s)
            except (IncidentSimError, ValueError) as exc:
                self._state, self._error = "failed", str(exc)
                logger.error("background indexing stopped after %d of %d incidents: %s", self._indexed,
                             len(self.incidents), exc)
                return False
        self._state = "stopped"
        logger.info("background indexing stopped at %d of %d incidents (the next quickstart indexes the rest)",
                    self._indexed, len(self.incidents))
        return False
