"""Agents' verdicts on suggestions, kept durably and idempotently per (incident, suggested, source).

Two adapters behind one small interface (the same contract test runs on both):
- `FileFeedbackStore` (embedded Qdrant Edge): an append-only JSON-lines log under the data directory, one
  fsync per accepted write, a torn last line (a crash in the middle of a write) skipped on read. One process owns
  a data directory (the index directory's CATALOG.lock), so one writer appends; a log needs no compaction at
  feedback rates (a verdict per agent click).
- `QdrantFeedbackStore` (Qdrant server): a small collection `<alias>.feedback` beside the index versions, one
  point per (incident, suggested, source) (a UUIDv5 of the key: a retried POST upserts the same point), so every
  replica reads and writes the same feedback.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from indexing.errors import StoreUnavailableError

logger = logging.getLogger(__name__)


class Verdict(StrEnum):
    duplicate = "duplicate"  # the suggested incident is the same problem (also: a link recorded in ServiceNow)
    related = "related"  # related, not the same problem
    not_similar = "not_similar"


LINK_SOURCE = "servicenow-link"  # feedback derived from a duplicate_of / parent_incident / problem_id link


@dataclass(frozen=True)
class FeedbackRecord:
    incident: str
    suggested: str
    verdict: str
    source: str
    at: str  # when the agent gave it (ISO 8601, UTC), as sent
    received_at: str  # when this service first stored this verdict
    flagged: bool | None = None  # was the suggestion marked similar in an answer this service recorded? None: unknown
    score: float | None = None  # its score in that answer

    @property
    def key(self) -> tuple[str, str, str]:
        return self.incident, self.suggested, self.source

    def same_verdict(self, other: FeedbackRecord) -> bool:
        return (self.verdict, self.at) == (other.verdict, other.at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedbackRecord:
        return cls(incident=str(data["incident"]), suggested=str(data["suggested"]), verdict=str(data["verdict"]),
                   source=str(data["source"]), at=str(data["at"]), received_at=str(data["received_at"]),
                   flagged=data.get("flagged"), score=data.get("score"))


@dataclass(frozen=True)
class FeedbackPage:
    items: list[FeedbackRecord]
    next_cursor: str | None
    total: int


@dataclass(frozen=True)
class FeedbackCounts:
    by_verdict: dict[str, int]  # every verdict kept
    flagged_by_verdict: dict[str, int]  # verdicts on suggestions that were flagged

    @property
    def flagged_with_feedback(self) -> int:
        return sum(self.flagged_by_verdict.values())

    @property
    def flagged_confirmed(self) -> int:
        return self.flagged_by_verdict.get(Verdict.duplicate.value, 0)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class FeedbackStore(ABC):
    """Feedback keyed by (incident, suggested, source): `record` is idempotent (the same verdict again changes
    nothing; a new verdict for the same key replaces the old one); `page` lists in a stable order."""

    kind: str = "?"

    @abstractmethod
    def record(self, record: FeedbackRecord) -> tuple[FeedbackRecord, bool]:
        """Store durably before returning. Returns the stored record and whether anything changed (False: the
        same verdict was already kept, and the stored record, with its first received_at, is returned)."""

    @abstractmethod
    def get(self, incident: str, suggested: str, source: str) -> FeedbackRecord | None: ...

    @abstractmethod
    def page(self, cursor: str | None = None, limit: int = 100) -> FeedbackPage: ...

    @abstractmethod
    def counts(self) -> FeedbackCounts: ...

    def close(self) -> None:  # noqa: B027  (optional)
        pass

    @staticmethod
    def _merge(old: FeedbackRecord | None, new: FeedbackRecord) -> tuple[FeedbackRecord, bool]:
        if old is not None and old.same_verdict(new):
            return old, False
        if old is not None:  # a changed verdict keeps what the service knew of the suggestion
            new = replace(new, flagged=new.flagged if new.flagged is not None else old.flagged,
                          score=new.score if new.score is not None else old.score)
        return new, True


def _counts(records: Iterable[FeedbackRecord]) -> FeedbackCounts:
    by = dict.fromkeys((v.value for v in Verdict), 0)
    flagged = dict.fromkeys((v.value for v in Verdict), 0)
    for r in records:
        by[r.verdict] = by.get(r.verdict, 0) + 1
        if r.flagged:
            flagged[r.verdict] = flagged.get(r.verdict, 0) + 1
    return FeedbackCounts(by, flagged)


class FileFeedbackStore(FeedbackStore):
    """An append-only JSON-lines log, fsync'd per accepted write; the latest line of a key wins."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str, str], FeedbackRecord] = {}
        self._order: list[tuple[str, str, str]] = []  # first-seen order: the paging order
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            lines = f.read().split(b"\n")
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                record = FeedbackRecord.from_dict(json.loads(raw))
            except (ValueError, KeyError, TypeError):
                # only the last line can be torn by a crash; anything else is reported, never fatal
                level = logging.WARNING if number >= len(lines) - 1 else logging.ERROR
                logger.log(level, "feedback log %s: line %d is unreadable and skipped", self.path, number)
                continue
            self._remember(record)

    def _remember(self, record: FeedbackRecord) -> None:
        if record.key not in self._records:
            self._order.append(record.key)
        self._records[record.key] = record

    def _append(self, record: FeedbackRecord) -> None:
        line = json.dumps(record.to_dict(), separators=(",", ":")).encode() + b"\n"
        new = not self.path.exists()
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if not new and os.fstat(fd).st_size > 0:  # a torn last line from a crash: start on a new line
                with self.path.open("rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the file's directory entry must survive a crash too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def record(self, record: FeedbackRecord) -> tuple[FeedbackRecord, bool]:
        with self._lock:
            stored, changed = self._merge(self._records.get(record.key), record)
            if changed:
                try:
                    self._append(stored)
                except OSError as exc:
                    raise StoreUnavailableError(f"feedback log {self.path} cannot take writes: "
                                                f"{exc.strerror or exc}") from exc
                self._remember(stored)
            return stored, changed

    def get(self, incident: str, suggested: str, source: str) -> FeedbackRecord | None:
        with self._lock:
            return self._records.get((incident, suggested, source))

    def page(self, cursor: str | None = None, limit: int = 100) -> FeedbackPage:
        start = _int_cursor(cursor)
        with self._lock:
            keys = self._order[start:start + limit]
            items = [self._records[k] for k in keys]
            total = len(self._order)
        end = start + len(keys)
        return FeedbackPage(items, str(end) if end < total else None, total)

    def counts(self) -> FeedbackCounts:
        with self._lock:
            return _counts(list(self._records.values()))


def _int_cursor(cursor: str | None) -> int:
    if cursor in (None, ""):
        return 0
    try:
        value = int(cursor)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"cursor: {cursor!r} is not a cursor this service gave (use next_cursor of a page)")
    return value


FEEDBACK_NAMESPACE = uuid.UUID("6f1c2a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")


def feedback_point_id(incident: str, suggested: str, source: str) -> str:
    return str(uuid.uuid5(FEEDBACK_NAMESPACE, "\x1f".join((incident, suggested, source))))


class QdrantFeedbackStore(FeedbackStore):
    """Feedback as points (no vectors) of one collection on the Qdrant server every replica uses."""

    kind = "qdrant"

    def __init__(self, client: Any, collection: str) -> None:
        self.client = client
        self.collection = collection
        self._ready = False

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            logger.debug("Qdrant feedback collection %s failed on %s: %r", self.collection, what, exc)
            raise StoreUnavailableError(f"the feedback collection {self.collection} failed on {what}: "
                                        f"{type(exc).__name__}") from exc

    def _ensure(self) -> None:
        if self._ready:
            return
        from qdrant_client import models

        if not self._call("collection_exists", self.client.collection_exists, self.collection):
            try:
                self.client.create_collection(collection_name=self.collection, vectors_config={})
            except Exception:  # another replica created it first
                if not self._call("collection_exists", self.client.collection_exists, self.collection):
                    raise
            for name in ("verdict", "source", "incident"):
                self._call("create_payload_index", self.client.create_payload_index, self.collection, name,
                           models.PayloadSchemaType.KEYWORD)
        self._ready = True

    def get(self, incident: str, suggested: str, source: str) -> FeedbackRecord | None:
        self._ensure()
        found = self._call("retrieve", self.client.retrieve, self.collection,
                           [feedback_point_id(incident, suggested, source)], with_payload=True, with_vectors=False)
        return FeedbackRecord.from_dict(found[0].payload) if found else None

    def record(self, record: FeedbackRecord) -> tuple[FeedbackRecord, bool]:
        from qdrant_client import models

        stored, changed = self._merge(self.get(*record.key), record)
        if changed:
            point = models.PointStruct(id=feedback_point_id(*record.key), vector={}, payload=stored.to_dict())
            self._call("upsert", self.client.upsert, self.collection, points=[point], wait=True)
        return stored, changed

    def page(self, cursor: str | None = None, limit: int = 100) -> FeedbackPage:
        self._ensure()
        offset: str | None = None
        if cursor:
            try:
                offset = str(uuid.UUID(cursor))
            except ValueError:
                raise ValueError(f"cursor: {cursor!r} is not a cursor this service gave (use next_cursor of a "
                                 "page)") from None
        points, next_offset = self._call("scroll", self.client.scroll, self.collection, limit=limit, offset=offset,
                                         with_payload=True, with_vectors=False)
        total = int(self._call("count", self.client.count, self.collection, exact=True).count)
        return FeedbackPage([FeedbackRecord.from_dict(p.payload) for p in points],
                            str(next_offset) if next_offset is not None else None, total)

    def counts(self) -> FeedbackCounts:
        self._ensure()
        records: list[FeedbackRecord] = []
        offset = None
        while True:  # feedback is small (agent clicks): one pass over the payloads
            points, offset = self._call("scroll", self.client.scroll, self.collection, limit=1000, offset=offset,
                                        with_payload=True, with_vectors=False)
            records.extend(FeedbackRecord.from_dict(p.payload) for p in points)
            if offset is None:
                return _counts(records)
