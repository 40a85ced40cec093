"""Calibrating the serving threshold in the background (the quickstart serves its baseline bundle at once, with the
uncalibrated default threshold, so its answers carry `similar: null`). The job runs the offline rule of
`incident-sim calibrate` (training.quality.calibrate_as_served: the per-incident Clopper-Pearson rule, pool "all",
on the train + validation splits of the labelled incidents it is given), writes the chosen threshold as a
threshold-only bundle derived from the serving one (same encoder and scoring: the serving index serves on, nothing
is re-embedded) and switches to it through the one threshold switch (service/versions/threshold.py). A failure logs
one line and leaves the uncalibrated bundle serving. No HTTP here: /readyz reads `progress()`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexing.bundle import CALIBRATED
from indexing.errors import SwapInProgressError
from indexing.incidents import Incident
from indexing.steps import format_seconds
from service.flag.recalibrate import write_threshold_only

if TYPE_CHECKING:
    from service.engine import Engine
    from service.versions.switcher import ModelSwitcher

logger = logging.getLogger(__name__)

RUNNING, DONE, FAILED, STOPPED = "running", "done", "failed", "stopped"
MESSAGES = {
    RUNNING: "calibrating the threshold on the sample's train + validation splits in the background: until it is "
             "done every result's `similar` is null (threshold_source uncalibrated_default)",
    DONE: "the threshold is calibrated: answers carry threshold_source calibrated and a boolean `similar`",
    FAILED: "the background calibration failed (see the service log): the uncalibrated default threshold serves on, "
            "every `similar` stays null",
    STOPPED: "the background calibration was stopped before it finished: the uncalibrated default threshold serves on",
}


@dataclass(frozen=True)
class CalibrationProgress:
    state: str  # running | done | failed | stopped
    message: str
    corpus: str
    incidents: int
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    from_model_version: str | None = None  # the uncalibrated bundle it calibrates
    model_version: str | None = None  # the calibrated threshold-only bundle, when done
    threshold: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BackgroundCalibration:
    """Calibrates the serving bundle's threshold on `incidents` (labelled by their links) on a daemon thread and
    switches to the result. `hold`: the job waits for this event before it starts working (tests use it to see the
    running state; None: no wait)."""

    def __init__(self, engine: Engine, incidents: Sequence[Incident], data_dir: Path, corpus_name: str = "sample",
                 n_boot: int = 200, hold: threading.Event | None = None, switch_retries: int = 12,
                 retry_s: float = 5.0, heartbeat_s: float = 60.0) -> None:
        self.engine = engine
        self.switcher: ModelSwitcher | None = None  # the app's (create_app binds it)
        self.incidents = list(incidents)
        self.data_dir = data_dir
        self.corpus_name = corpus_name
        self.n_boot = n_boot
        self.hold = hold
        self.switch_retries = switch_retries
        self.retry_s = retry_s
        self.heartbeat_s = heartbeat_s  # a progress line in the log this often while it runs (0: none)
        self._lock = threading.Lock()
        self._progress = CalibrationProgress(RUNNING, MESSAGES[RUNNING], corpus_name, len(self.incidents))
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-calibration", daemon=True)

    def bind(self, switcher: ModelSwitcher | None) -> None:
        """The switcher the calibrated bundle switches through (the app's one: one owner of index versions)."""
        self.switcher = switcher

    def start(self) -> None:
        logger.info("calibrating the threshold of %s in the background on %d %s incidents (train + validation); "
                    "answers carry similar: null until it is done", self.engine.bundle.model_version,
                    len(self.incidents), self.corpus_name)
        self._set(started_at=datetime.now(UTC).isoformat(), from_model_version=self.engine.bundle.model_version)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the job to stop: it stops before switching (an evaluation under way is not interrupted; the thread
        is a daemon, so the process does not wait for it beyond `timeout`)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the job has finished (done, failed or stopped)."""
        return self._done.wait(timeout)

    def progress(self) -> CalibrationProgress:
        with self._lock:
            return self._progress

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._progress = CalibrationProgress(**{**self._progress.to_dict(), **changes})

    def _finish(self, state: str, t0: float, **changes: Any) -> None:
        self._set(state=state, message=MESSAGES[state], finished_at=datetime.now(UTC).isoformat(),
                  seconds=round(time.monotonic() - t0, 1), **changes)
        self._done.set()

    def _heartbeat(self) -> None:
        t0 = time.monotonic()
        while self.heartbeat_s > 0 and not self._done.wait(self.heartbeat_s):
            logger.info("background calibration still running (%s so far; answers carry similar: null meanwhile)",
                        format_seconds(time.monotonic() - t0))

    def _run(self) -> None:
        threading.Thread(target=self._heartbeat, name="background-calibration-heartbeat", daemon=True).start()
        t0 = time.monotonic()
        try:
            if self.hold is not None:
                while not self.hold.wait(0.1):
                    if self._stop.is_set():
                        self._finish(STOPPED, t0)
                        return
                t0 = time.monotonic()
            path, threshold = self._calibrate()
            if self._stop.is_set():
                logger.info("background calibration stopped before the switch; %s is written but does not serve",
                            path.name)
                self._finish(STOPPED, t0)
                return
            self._switch(path.name)
        except Exception as exc:  # one clear line; the uncalibrated bundle keeps serving
            logger.error("background calibration failed after %s, the uncalibrated threshold keeps serving: %s: %s",
                         format_seconds(time.monotonic() - t0), type(exc).__name__, exc)
            self._finish(FAILED, t0, error=f"{type(exc).__name__}: {exc}")
            return
        self._finish(DONE, t0, model_version=path.name, threshold=threshold)
        logger.info("background calibration done in %s: threshold %.4f (bundle %s) serves on index %s",
                    format_seconds(time.monotonic() - t0), threshold, path.name, self.engine.index_version)

    def _calibrate(self) -> tuple[Path, float]:
        """The offline rule on the incidents; the threshold-only bundle written and published in the registry."""
        from training.calibrate import (
            DEFAULT_CONFIDENCE,
            DEFAULT_TARGET_FALSE_ALARM,
            UNIT_INCIDENT,
            ThresholdRule,
            calibration_splits,
        )
        from training.data.labels import from_incidents
        from training.quality import calibrate_as_served, evaluation_index_dir, evaluation_summary

        registry = self.engine.registry
        if self.switcher is None or registry is None:
            raise RuntimeError("no index store or bundle registry to switch on (unreachable at start-up)")
        parent = self.engine.bundle
        if parent.threshold_source == CALIBRATED:
            raise RuntimeError(f"{parent.model_version} is already calibrated: nothing to do")
        splits, why = calibration_splits(parent)
        rule = ThresholdRule(unit=UNIT_INCIDENT, target=DEFAULT_TARGET_FALSE_ALARM, confidence=DEFAULT_CONFIDENCE,
                             splits=splits, pool="all")  # the defaults of `incident-sim calibrate`
        corpus = from_incidents(self.incidents, self.corpus_name)
        logger.info("background calibration: %s; rule: %s", why, rule.describe())
        report = calibrate_as_served(parent, corpus, rule, n_boot=self.n_boot,
                                     index_dir=evaluation_index_dir(self.data_dir, corpus, parent))
        record = report["threshold"]
        calibration = record.get("calibration") or {}
        logger.info("background calibration: threshold %.4f (%d of %d duplicate-free incidents above it, upper "
                    "bound %.3f; phases %s)", record["value"], calibration.get("false_alarms", -1),
                    calibration.get("trials", -1), calibration.get("upper_bound", float("nan")),
                    ", ".join(f"{k} {v:.1f} s" for k, v in report["timings"]["phases_s"].items()))
        path = write_threshold_only(parent, registry, record, evaluation_summary(corpus, report),
                                    f"background calibration on {self.corpus_name} ({' + '.join(splits)}; the "
                                    "offline rule of incident-sim calibrate)")
        return path, float(record["value"])

    def _switch(self, model_version: str) -> None:
        """The threshold-only switch; retried while another switch or a compaction holds the switcher."""
        assert self.switcher is not None
        for attempt in range(self.switch_retries + 1):
            try:
                self.switcher.switch_threshold(model_version)
                return
            except SwapInProgressError as exc:
                if attempt == self.switch_retries or self._stop.wait(self.retry_s):
                    raise
                logger.info("background calibration: switch waits (%s)", exc)
