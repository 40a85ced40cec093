"""The dense encoder at serving time: ONNX Runtime + the fast `tokenizers` tokenizer + mean pooling."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
from tqdm import tqdm

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedBatch:
    vectors: np.ndarray  # (n, dim) float32, L2-normalised
    truncated: int  # how many inputs were cut at max_seq_length
    cut: tuple[bool, ...] = ()  # per input: was it cut?


class OnnxEncoder:
    """Encodes texts into L2-normalised sentence embeddings (mean pooling over the attention mask).

    Thread-safe: ONNX Runtime sessions may be run concurrently; the tokenizer is used under a lock
    because its padding/truncation settings are mutable state."""

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        max_seq_length: int,
        intra_op_threads: int = 0,
        providers: Sequence[str] | None = None,
        allow_spinning: bool = True,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        # Spinning intra-op threads cut a lone batch's latency but burn the cores that concurrent requests (the
        # store, HTTP) need; the service turns it off (INCIDENT_SIM_ENCODER_SPINNING, benchmarks.concurrency).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        if providers is None:
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = ort.InferenceSession(str(model_path), sess_options=options, providers=list(providers))
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.max_seq_length = max_seq_length
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._lock = threading.Lock()
        self.dim = int(self.session.get_outputs()[0].shape[-1]) if isinstance(
            self.session.get_outputs()[0].shape[-1], int) else 0
        logger.info("encoder loaded: %s (providers %s)", model_path.name, self.session.get_providers())

    def encode(self, texts: Sequence[str], batch_size: int = 32, max_tokens: int | None = None,
               progress: str | None = None) -> EncodedBatch:
        """`max_tokens`: read at most this many tokens of each text (special tokens included), never more than
        the model's `max_seq_length`; a text cut shorter counts as truncated. `progress`: show a progress bar
        with this description (long offline encodes: parity, evaluation)."""
        limit = self.max_seq_length if max_tokens is None else min(max_tokens, self.max_seq_length)
        if limit < 2:
            raise ValueError(f"max_tokens must be at least 2 (the model's two special tokens), got {max_tokens}")
        if not texts:
            return EncodedBatch(np.zeros((0, self.dim), dtype=np.float32), 0)
        # Sort by length so each batch pads to similar lengths (dynamic padding), then restore order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        cut = [False] * len(texts)
        with tqdm(total=len(texts), desc=progress, unit="text", disable=progress is None, leave=False) as bar:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                vectors, flags = self._encode_batch([texts[i] for i in idx], limit)
                for row, i in enumerate(idx):
                    out[i] = vectors[row]
                    cut[i] = flags[row]
                bar.update(len(idx))
        return EncodedBatch(np.stack(out).astype(np.float32), sum(cut), tuple(cut))

    def _encode_batch(self, texts: list[str], limit: int) -> tuple[np.ndarray, list[bool]]:
        with self._lock:
            encodings = self.tokenizer.encode_batch(texts)
        truncated = []
        rows = []
        for enc in encodings:
            ids = enc.ids
            truncated.append(len(ids) > limit)
            if truncated[-1]:
                # keep the leading tokens and the closing special token, as the model was trained
                ids = ids[: limit - 1] + ids[-1:]
            rows.append(ids)
        width = max(len(r) for r in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        pad_id = self.tokenizer.token_to_id("<pad>")
        if pad_id is None:
            pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        input_ids.fill(pad_id)
        for r, ids in enumerate(rows):
            input_ids[r, : len(ids)] = ids
            attention[r, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self.session.run(None, feeds)[0]  # (n, seq, dim) last_hidden_state
        mask = attention[..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None), truncated

    def encode_one(self, text: str, max_tokens: int | None = None) -> tuple[np.ndarray, bool]:
        batch = self.encode([text], max_tokens=max_tokens)
        return batch.vectors[0], batch.truncated > 0


class TokenCappedEncoder:
    """Queries read at most `max_tokens` tokens (INCIDENT_SIM_MAX_QUERY_TOKENS): a pasted log costs a short
    encode. Stored incidents keep the model's full length; benchmarks.query_tokens measures what a cap costs
    in quality and saves in latency."""

    def __init__(self, encoder: OnnxEncoder, max_tokens: int) -> None:
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be at least 2, got {max_tokens}")
        self.encoder = encoder
        self.max_tokens = max_tokens

    def __getattr__(self, name: str) -> object:
        return getattr(self.encoder, name)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> EncodedBatch:
        return self.encoder.encode(texts, batch_size=batch_size, max_tokens=self.max_tokens)

    def encode_one(self, text: str) -> tuple[np.ndarray, bool]:
        return self.encoder.encode_one(text, max_tokens=self.max_tokens)
