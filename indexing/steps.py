"""Named steps with their durations, so long work says what it is doing and, at the end, what each part took.

    with steps.run("bundle baseline"):          # the command: prints one line per step at the end
        with steps.step("export ONNX FP32"):    # anywhere below it, in any module
            ...

A step logs when it starts and when it ends (with its duration); outside a run it only logs. Steps nest: the
summary indents a step under the one it ran in. Long steps show their own progress bar (tqdm) as well."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class StepRecord:
    name: str
    depth: int
    seconds: float | None = None  # None: still running (or it failed before the end)
    failed: bool = False


@dataclass
class StepRun:
    title: str
    started: float = field(default_factory=time.perf_counter)
    records: list[StepRecord] = field(default_factory=list)
    depth: int = 0

    def summary(self) -> str:
        total = time.perf_counter() - self.started
        lines = [f"{self.title}: {format_seconds(total)} in all"]
        for record in self.records:
            took = "failed" if record.failed else format_seconds(record.seconds or 0.0)
            lines.append(f"  {'  ' * record.depth}{record.name:<{max(8, 56 - 2 * record.depth)}} {took:>9}")
        return "\n".join(lines)


_current: ContextVar[StepRun | None] = ContextVar("incident_sim_step_run", default=None)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


@contextmanager
def run(title: str, log_summary: bool = True) -> Iterator[StepRun]:
    """Collect the steps taken inside; log their durations when done (also after a failure: what ran, how long)."""
    outer = _current.get()
    if outer is not None:  # a command called from another (quickstart -> bundle): one run, one summary
        with step(title):
            yield outer
        return
    record = StepRun(title)
    token = _current.set(record)
    try:
        yield record
    finally:
        _current.reset(token)
        if log_summary and record.records:
            logger.info("%s", record.summary())


@contextmanager
def step(name: str) -> Iterator[StepRecord]:
    current = _current.get()
    record = StepRecord(name, current.depth if current else 0)
    if current is not None:
        current.records.append(record)
        current.depth += 1
    logger.info("step: %s ...", name)
    t0 = time.perf_counter()
    try:
        yield record
    except BaseException:
        record.failed = True
        logger.info("step: %s failed after %s", name, format_seconds(time.perf_counter() - t0))
        raise
    finally:
        record.seconds = time.perf_counter() - t0
        if current is not None:
            current.depth -= 1
    logger.info("step: %s done in %s", name, format_seconds(record.seconds))
