"""Encode concurrent queries together (a micro-batcher, as TEI and infinity do).

Each /similar request encodes one short text; ONNX Runtime runs a batch of several for little more than
one. A worker thread takes every query waiting when it is free and encodes them in one run. Under load,
queries that arrive while a batch runs form the next one; with `window_s` > 0 the worker also waits up
to that long for requests already in flight (but not yet encoding) to join. With one request in flight
it never waits: the query is encoded alone at once, as without the batcher.

A query's vector is the same as encoding it alone up to padding and INT8's per-batch activation range
(within the bundle's parity bar; tests/test_batcher.py). No HTTP here: the engine wraps its encoder."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from indexing.dense_text import TextEncoder
from indexing.encoder import EncodedBatch

logger = logging.getLogger(__name__)


@dataclass
class _Query:
    text: str
    done: threading.Event = field(default_factory=threading.Event)
    vector: np.ndarray | None = None
    truncated: bool = False
    error: BaseException | None = None


class BatchingEncoder:
    """Drop-in for an encoder's `encode_one` (everything else is passed through to the wrapped encoder)."""

    def __init__(self, encoder: TextEncoder, window_s: float = 0.002, max_batch: int = 16) -> None:
        self.encoder = encoder
        self.window_s = window_s
        self.max_batch = max_batch
        self._queue: list[_Query] = []
        self._cv = threading.Condition()
        self._in_flight = 0  # requests between request() enter and exit
        self._closed = False
        self.batches = 0  # runs made, and queries they encoded (batch size = encoded / batches)
        self.encoded = 0
        self._worker = threading.Thread(target=self._run, name="encode-batcher", daemon=True)
        self._worker.start()

    def __getattr__(self, name: str) -> object:
        return getattr(self.encoder, name)

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Mark one request in flight (the window waits only for requests that are)."""
        with self._cv:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._cv:
                self._in_flight -= 1
                self._cv.notify_all()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> EncodedBatch:
        return self.encoder.encode(texts, batch_size=batch_size)

    def encode_one(self, text: str) -> tuple[np.ndarray, bool]:
        query = _Query(text)
        with self._cv:
            if self._closed:
                raise RuntimeError("the encoder batcher is closed")
            self._queue.append(query)
            self._cv.notify_all()
        query.done.wait()
        if query.error is not None:
            raise query.error
        assert query.vector is not None
        return query.vector, query.truncated

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._worker.join(timeout=5)

    def _take(self) -> list[_Query] | None:
        with self._cv:
            while not self._queue and not self._closed:
                self._cv.wait()
            if self._closed and not self._queue:
                return None
            deadline = time.monotonic() + self.window_s
            # wait for requests already in flight to reach the encoder, never for ones not yet arrived
            while (self.window_s > 0 and len(self._queue) < min(self._in_flight, self.max_batch)
                   and (left := deadline - time.monotonic()) > 0):
                self._cv.wait(left)
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                encoded = self.encoder.encode([q.text for q in batch], batch_size=len(batch))
                for row, q in enumerate(batch):
                    q.vector = encoded.vectors[row]
                    q.truncated = bool(encoded.cut[row]) if encoded.cut else False
            except BaseException as exc:  # every caller of this batch gets the error
                for q in batch:
                    q.error = exc
            self.batches += 1
            self.encoded += len(batch)
            for q in batch:
                q.done.set()
