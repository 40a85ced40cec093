"""The recent-answer log: what every /similar answer flagged, without any text.

In memory (the last `capacity` answers) plus two JSON-lines segments under the data directory: appends go to the
current segment; once it holds `capacity` lines it becomes the previous one (the older previous is dropped), so the
disk holds at most 2 x capacity lines. Each line is written whole and flushed to the OS before the answer is
returned (a SIGKILL loses nothing: the page cache outlives the process); fsync runs at most every `fsync_s`
seconds (a power cut loses at most that much: recent-answer statistics, never an acknowledged write). A torn last
line is skipped on read."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from indexing.bundle import CALIBRATED

logger = logging.getLogger(__name__)

SUGGESTED_KEPT = 10  # suggestions remembered per answer (numbers and scores only): feedback and links match them


@dataclass(frozen=True)
class AnswerRecord:
    at: float  # unix time
    number: str | None  # the incident asked about (the one `exclude`d), when the caller named it
    best: float | None  # the best score; None: no result
    flagged: bool | None  # any result marked similar; None: the threshold was the uncalibrated default (no flag)
    threshold: float
    model_version: str
    threshold_source: str
    suggested: tuple[tuple[str, float], ...] = field(default_factory=tuple)  # (number, score), best first

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["suggested"] = [[n, round(s, 6)] for n, s in self.suggested]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerRecord:
        source = str(data.get("threshold_source", ""))
        # an uncalibrated answer flagged nothing either way (lines written before that was so say false)
        undecided = data["flagged"] is None or source not in ("", CALIBRATED)
        return cls(at=float(data["at"]), number=data.get("number"),
                   best=None if data.get("best") is None else float(data["best"]),
                   flagged=None if undecided else bool(data["flagged"]),
                   threshold=float(data["threshold"]), model_version=str(data["model_version"]),
                   threshold_source=source,
                   suggested=tuple((str(n), float(s)) for n, s in data.get("suggested") or ()))


class AnswerLog:
    def __init__(self, directory: Path | None, capacity: int = 10_000, fsync_s: float = 1.0) -> None:
        self.directory = directory
        self.capacity = capacity
        self.fsync_s = fsync_s
        self._lock = threading.Lock()
        self._recent: deque[AnswerRecord] = deque(maxlen=capacity)
        self._file: IO[bytes] | None = None
        self._lines = 0  # in the current segment
        self._last_sync = 0.0
        self.write_failures = 0
        if directory is not None:
            for record in self._read_segments():
                self._recent.append(record)

    @property
    def current_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "answers.jsonl"

    @property
    def previous_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "answers.previous.jsonl"

    def _read_segments(self) -> Iterator[AnswerRecord]:
        for path in (self.previous_path, self.current_path):
            if not path.exists():
                continue
            lines = path.read_bytes().split(b"\n")
            good = 0
            for raw in lines:
                if not raw.strip():
                    continue
                try:
                    record = AnswerRecord.from_dict(json.loads(raw))
                except (ValueError, KeyError, TypeError):
                    logger.warning("answer log %s: an unreadable line skipped (a write cut short)", path)
                    continue
                good += 1
                yield record
            if path == self.current_path:
                self._lines = good

    def record(self, record: AnswerRecord) -> None:
        with self._lock:
            self._recent.append(record)
            if self.directory is None:
                return
            try:
                self._write(record)
            except OSError as exc:  # the answer is still served: the log is statistics, not a write
                self.write_failures += 1
                self._close_file()
                if self.write_failures == 1 or self.write_failures % 1000 == 0:
                    logger.error("answer log %s: write failed (%s); %d answers not logged", self.directory,
                                 exc.strerror or exc, self.write_failures)

    def _write(self, record: AnswerRecord) -> None:
        if self._lines >= self.capacity:
            self._close_file()
            os.replace(self.current_path, self.previous_path)
            self._lines = 0
        if self._file is None:
            assert self.directory is not None
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = self.current_path.open("ab")
            if self._file.tell() > 0:  # after a crash the last line may be torn: start on a fresh one
                with self.current_path.open("rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        self._file.write(b"\n")
        self._file.write(json.dumps(record.to_dict(), separators=(",", ":")).encode() + b"\n")
        self._file.flush()
        self._lines += 1
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_s:
            os.fsync(self._file.fileno())
            self._last_sync = now

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def recent(self, n: int | None = None) -> list[AnswerRecord]:
        with self._lock:
            items = list(self._recent)
        return items if n is None else items[-n:]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.flush()
                    os.fsync(self._file.fileno())
                except OSError:
                    pass
            self._close_file()
