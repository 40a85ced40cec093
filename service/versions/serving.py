"""One model bundle and the index version built with it (`ServingVersion`), and how versions get their encoder."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from indexing.batcher import BatchingEncoder
from indexing.bundle import Bundle
from indexing.dense_text import TextEncoder
from indexing.encoder import DEFAULT_TOKEN_BUDGET, OnnxEncoder, TokenCappedEncoder
from indexing.errors import IndexMissingError, StoreUnavailableError
from indexing.indexer import bm25_encoder_for, check_index_matches
from indexing.query_cache import CachedQueryEncoder
from indexing.search import HybridSearcher
from indexing.store.base import IncidentStore, IndexMeta
from service.settings import Settings


@dataclass(frozen=True)
class EncoderOptions:
    """How every version's ONNX Runtime session is made (the serving one, a rebuild's, a rollback target's)."""

    threads: int = 0  # intra-op threads (0 = all cores)
    spinning: bool = False
    token_budget: int = DEFAULT_TOKEN_BUDGET  # padded tokens per bulk ONNX Runtime run (indexing.length_batches)

    @classmethod
    def from_settings(cls, settings: Settings) -> EncoderOptions:
        return cls(settings.encoder_threads, settings.encoder_spinning, settings.encoder_token_budget)

    def encoder_for(self, bundle: Bundle) -> OnnxEncoder:
        return OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length,
                           intra_op_threads=self.threads, allow_spinning=self.spinning, token_budget=self.token_budget)


class ServingVersion:
    """One model bundle and the index version built with it: what a request uses from start to end.
    Immutable except for its searcher, made (and checked against the index) on first use."""

    def __init__(self, bundle: Bundle, encoder: OnnxEncoder, store: IncidentStore, index_name: str | None,
                 candidate_k: int = 100) -> None:
        self.bundle = bundle
        self.encoder = encoder
        self.store = store
        self.index_name = index_name
        self.candidate_k = candidate_k
        self._searcher: HybridSearcher | None = None
        self._meta: IndexMeta | None = None
        self._lock = threading.Lock()
        self._batcher: BatchingEncoder | None = None
        self._query_encoder: TextEncoder | None = None

    def query_encoder(self, window_s: float, max_batch: int, cache_size: int,
                      max_tokens: int | None = None) -> tuple[TextEncoder, BatchingEncoder | None]:
        """The encoder for /similar queries and its batcher: a cache of recent query texts
        (indexing/query_cache.py; cache_size 0 = none) in front of a batcher that encodes concurrent queries
        together (indexing/batcher.py; max_batch 1 = none), in front of the encoder reading at most
        `max_tokens` tokens of a query (None: the model's limit)."""
        if self._query_encoder is None:
            with self._lock:
                if self._query_encoder is None:
                    encoder: TextEncoder = self.encoder
                    if max_tokens is not None and max_tokens < self.bundle.max_seq_length:
                        encoder = TokenCappedEncoder(self.encoder, max_tokens)
                    if max_batch > 1:
                        self._batcher = BatchingEncoder(encoder, window_s=window_s, max_batch=max_batch)
                        encoder = self._batcher
                    if cache_size > 0:
                        encoder = CachedQueryEncoder(encoder, size=cache_size)
                    self._query_encoder = encoder
        return self._query_encoder, self._batcher

    def sharing(self, bundle: Bundle) -> ServingVersion:
        """`bundle` serving on this same index version (a threshold-only change: same encoder and scoring), with
        this version's encoder, store and query encoder (its cache stays valid): nothing is re-embedded."""
        other = ServingVersion(bundle, self.encoder, self.store, self.index_name, self.candidate_k)
        with self._lock:
            other._query_encoder, other._batcher = self._query_encoder, self._batcher
        return other

    def close_batcher(self) -> None:
        if self._batcher is not None:
            self._batcher.close()

    def searcher(self) -> HybridSearcher:
        if self._searcher is None:
            with self._lock:
                if self._searcher is None:
                    meta = self.store.meta()
                    if meta is None:
                        raise IndexMissingError("the incident index does not exist yet; run `incident-sim index`")
                    check_index_matches(meta, self.bundle)
                    self._meta = meta
                    self._searcher = HybridSearcher(self.store, bm25_encoder_for(meta, self.bundle.max_query_terms),
                                                    self.bundle.dense_weight,
                                                    self.bundle.bm25_weight, candidate_k=self.candidate_k,
                                                    normalization=self.bundle.scoring.normalization)
        return self._searcher

    @property
    def index_version(self) -> str | None:
        if self._meta is None:
            try:
                meta = self.store.meta()
            except StoreUnavailableError:
                return None
            return meta.index_version if meta else None
        return self._meta.index_version

    def reset_searcher(self, candidate_k: int | None = None) -> None:
        with self._lock:
            if candidate_k is not None:
                self.candidate_k = candidate_k
            self._searcher = None

    def reopen(self, store: IncidentStore) -> None:
        """Attach the reopened store of this same index version (after it was closed to be optimized apart)."""
        with self._lock:
            self.store, self._searcher, self._meta = store, None, None

    def close(self) -> None:
        self.close_batcher()
        self.store.close()
