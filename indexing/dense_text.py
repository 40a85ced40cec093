"""What the dense encoder sees of an incident, and how its vectors combine into the one stored/queried vector.

The encoder reads at most `max_seq_length` (384) tokens, so `short_description + description` lets a long
description (stack traces, logs) drown the summary. A bundle records one mode, chosen on validation data by
`incident-sim calibrate` (DESIGN: the score stays 0.7 * dense + 0.3 * bm25_norm with `dense` a cosine in
[-1, 1]); the indexer, the engine, the rebuild and the evaluation all embed through this one object, so the
served and the evaluated `dense` are the same number.

Modes (s = summary vector, f = full-text vector, both L2-normalised):
* `full`: f (the text is short_description + description; the default, and what bundles without a mode use);
* `summary`: s (short_description; the full text when there is none);
* `mean_vector`: normalise(s + f), one vector; cosine of two such vectors;
* `mean_cosine`: [s, f] / sqrt(2), a vector twice as long whose cosine with another is exactly the mean of
  the summary-summary and full-full cosines.
A query sent as free `text` has no summary of its own: its summary is that text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from indexing.encoder import EncodedBatch
from indexing.incidents import incident_text, normalise_whitespace

DENSE_TEXT_MODES = ("full", "summary", "mean_vector", "mean_cosine")


class TextEncoder(Protocol):
    def encode(self, texts: Sequence[str], batch_size: int = 32) -> EncodedBatch: ...

    def encode_one(self, text: str) -> tuple[np.ndarray, bool]: ...


def summary_text(short_description: str | None, description: str | None) -> str:
    return normalise_whitespace(short_description or "") or incident_text(short_description, description)


@dataclass(frozen=True)
class DenseText:
    mode: str = "full"

    def __post_init__(self) -> None:
        if self.mode not in DENSE_TEXT_MODES:
            raise ValueError(f"unknown dense text mode {self.mode!r}: use one of {', '.join(DENSE_TEXT_MODES)}")

    @property
    def dim_factor(self) -> int:
        """Stored vector length / encoder output length."""
        return 2 if self.mode == "mean_cosine" else 1

    def _combine(self, summary: np.ndarray | None, full: np.ndarray | None) -> np.ndarray:
        if self.mode == "full":
            assert full is not None
            return full
        if self.mode == "summary":
            assert summary is not None
            return summary
        assert summary is not None and full is not None
        if self.mode == "mean_vector":
            v = summary + full
            return (v / np.clip(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12, None)).astype(np.float32)
        return (np.concatenate([summary, full], axis=-1) / np.sqrt(2.0)).astype(np.float32)

    def embed(self, encoder: TextEncoder, fields: Sequence[tuple[str | None, str | None]],
              batch_size: int = 32) -> EncodedBatch:
        """Vectors for incidents given as (short_description, description); `cut`: the full text was cut at
        the model's length (for `summary`, the summary was)."""
        summary = full = None
        cut: tuple[bool, ...] = ()
        if self.mode != "summary":
            encoded = encoder.encode([incident_text(s, d) for s, d in fields], batch_size=batch_size)
            full, cut = encoded.vectors, encoded.cut
        if self.mode != "full":
            encoded = encoder.encode([summary_text(s, d) for s, d in fields], batch_size=batch_size)
            summary, cut = encoded.vectors, cut or encoded.cut
        vectors = self._combine(summary, full)
        return EncodedBatch(vectors, sum(cut), cut)

    def embed_one(self, encoder: TextEncoder, short_description: str | None, description: str | None,
                  text: str | None = None) -> tuple[np.ndarray, bool]:
        """One query, each text encoded alone (as /similar does): the vector and whether a text was cut."""
        full_text = text.strip() if text is not None else incident_text(short_description, description)
        summary = full = None
        truncated = False
        if self.mode != "summary":
            full, truncated = encoder.encode_one(full_text)
        if self.mode != "full":
            summary, cut = encoder.encode_one(full_text if text is not None
                                              else summary_text(short_description, description))
            truncated = truncated or cut
        return self._combine(summary, full), truncated


class MemoEncoder:
    """Remembers an encoder's answers per call (a batch by its exact list of texts, a query by its text), so
    evaluating several dense text modes encodes each text once and gets bit-identical vectors."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self._batches: dict[tuple[tuple[str, ...], int], EncodedBatch] = {}
        self._single: dict[str, tuple[np.ndarray, bool]] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self.encoder, name)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> EncodedBatch:
        key = (tuple(texts), batch_size)
        if key not in self._batches:
            self._batches[key] = self.encoder.encode(texts, batch_size=batch_size)
        return self._batches[key]

    def encode_one(self, text: str) -> tuple[np.ndarray, bool]:
        if text not in self._single:
            self._single[text] = self.encoder.encode_one(text)
        return self._single[text]
