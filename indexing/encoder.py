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

from indexing.length_batches import plan_batches

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedBatch:
    vectors: np.ndarray  # (n, dim) float32, L2-normalised
    truncated: int  # how many inputs were cut at max_seq_length
    cut: tuple[bool, ...] = ()  # per input: was it cut?


DEFAULT_TOKEN_BUDGET = 1024  # benchmarks.onboarding: 1024 was fastest of 1024/2048/4096 on sample and SeaMonkey


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
        token_budget: int = DEFAULT_TOKEN_BUDGET,
    ) -> None:
        """`token_budget`: the most padded tokens one ONNX Runtime run of `encode` holds (indexing.length_batches;
        0 = batches by count only, as before 2026-12)."""
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
        if token_budget < 0:
            raise ValueError(f"token_budget must be 0 (off) or positive, got {token_budget}")
        self.token_budget = token_budget
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
        rows, cut = self._token_rows(texts, limit)
        # Sorted by token length and cut into batches by padded tokens (dynamic padding), then restored to order.
        out = np.empty((len(texts), 0), dtype=np.float32)
        with tqdm(total=len(texts), desc=progress, unit="text", disable=progress is None, leave=False) as bar:
            for idx in plan_batches([len(r) for r in rows], self.token_budget, batch_size):
                vectors = self._run([rows[i] for i in idx])
                if out.shape[1] == 0:
                    out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                out[idx] = vectors
                bar.update(len(idx))
        return EncodedBatch(out, sum(cut), tuple(cut))

    def _token_rows(self, texts: Sequence[str], limit: int) -> tuple[list[list[int]], list[bool]]:
        """Each text's token ids, cut to `limit` (keeping the leading tokens and the closing special token, as the
        model was trained), and whether it was cut."""
        with self._lock:
            encodings = self.tokenizer.encode_batch(list(texts))
        rows: list[list[int]] = []
        cut: list[bool] = []
        for enc in encodings:
            ids = enc.ids
            cut.append(len(ids) > limit)
            rows.append(ids[: limit - 1] + ids[-1:] if cut[-1] else ids)
        return rows, cut

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        """One ONNX Runtime run over token rows padded to the longest: their mean-pooled, L2-normalised vectors."""
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
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

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
