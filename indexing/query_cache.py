"""An LRU cache of query embeddings keyed by the exact text: ServiceNow retries a call that timed out, and an
agent re-opens the same incident; neither should pay for the encoder twice. A retry gets the very vector the
first call got (also when that one was encoded in a batch). No HTTP here; the engine wraps its encoder."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from indexing.dense_text import TextEncoder
from indexing.encoder import EncodedBatch


class CachedQueryEncoder:
    """Drop-in for an encoder's `encode_one` with an LRU cache of `size` texts (everything else is passed
    through). The vectors handed out are read-only, so no caller can change a cached one."""

    def __init__(self, encoder: TextEncoder, size: int = 1024) -> None:
        if size < 1:
            raise ValueError("the query cache needs a size of at least 1")
        self.encoder = encoder
        self.size = size
        self._entries: OrderedDict[str, tuple[np.ndarray, bool]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.encoder, name)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> EncodedBatch:
        return self.encoder.encode(texts, batch_size=batch_size)

    def encode_one(self, text: str) -> tuple[np.ndarray, bool]:
        with self._lock:
            entry = self._entries.get(text)
            if entry is not None:
                self._entries.move_to_end(text)
                self.hits += 1
                return entry
        vector, truncated = self.encoder.encode_one(text)  # outside the lock: other texts encode meanwhile
        vector = np.array(vector, dtype=np.float32)
        vector.setflags(write=False)
        with self._lock:
            self.misses += 1
            self._entries[text] = (vector, truncated)
            self._entries.move_to_end(text)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return vector, truncated
