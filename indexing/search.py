"""Exact hybrid retrieval over a store.

Candidates are the union of the dense top-K and the BM25 top-K; for every candidate both parts are
computed exactly (cosine from its stored vector, BM25 from its stored sparse vector and the index's
IDF), so each returned score *is* the formula. The result is also certified to be the true hybrid
top-k (threshold algorithm): an incident outside both lists scores at most
w_d * (K-th dense score) + w_b * (K-th BM25 score); while the k-th best candidate is below that
bound, K grows. Dense candidates come from HNSW, so for large indexes the certificate is as good as
HNSW's recall; the scores themselves are always exact."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexing import lexical
from indexing.scoring import hybrid_score
from indexing.store.base import IncidentStore, StoredIncident

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredIncident:
    point_id: str
    payload: dict[str, Any]
    score: float
    dense: float
    bm25: float  # normalised, in [0, 1]: the value that enters the score
    bm25_raw: float  # Qdrant's BM25 value (IDF-weighted, before normalisation)


@dataclass
class SearchOutcome:
    results: list[ScoredIncident]
    candidates: int
    candidate_k: int
    certified: bool
    stage_seconds: dict[str, float] = field(default_factory=dict)


class HybridSearcher:
    def __init__(self, store: IncidentStore, bm25: lexical.BM25Encoder, dense_weight: float, bm25_weight: float,
                 candidate_k: int = 100, max_candidate_k: int = 1600) -> None:
        self.store = store
        self.bm25 = bm25
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.candidate_k = candidate_k
        self.max_candidate_k = max_candidate_k

    def search(self, query_vector: np.ndarray, query_text: str, top_k: int,
               exclude_ids: Collection[str] = ()) -> SearchOutcome:
        stages: dict[str, float] = {}
        t0 = time.perf_counter()
        sparse_query = self.bm25.query(query_text)
        n_docs = self.store.count()
        doc_freq = self.store.doc_freqs(sparse_query.indices)
        idf_by_term = {t: lexical.idf(n_docs, doc_freq.get(t, 0)) for t in sparse_query.indices}
        bound = lexical.upper_bound(sparse_query, idf_by_term, doc_freq)
        stages["bm25_stats"] = time.perf_counter() - t0

        exclude = set(exclude_ids)
        k = max(self.candidate_k, top_k + len(exclude))
        known: dict[str, StoredIncident] = {}
        stages["dense_search"] = stages["bm25_search"] = stages["fetch"] = 0.0
        while True:
            t = time.perf_counter()
            dense_hits = self.store.search_dense(query_vector, k)
            stages["dense_search"] += time.perf_counter() - t
            t = time.perf_counter()
            sparse_hits = self.store.search_sparse(sparse_query, k)
            stages["bm25_search"] += time.perf_counter() - t
            wanted = [h.point_id for h in (*dense_hits, *sparse_hits) if h.point_id not in known]
            t = time.perf_counter()
            for stored in self.store.fetch(list(dict.fromkeys(wanted))):
                known[stored.point_id] = stored
            stages["fetch"] += time.perf_counter() - t

            t = time.perf_counter()
            scored = [self._score(s, query_vector, sparse_query, idf_by_term, bound)
                      for pid, s in known.items() if pid not in exclude]
            scored.sort(key=lambda r: (-r.score, str(r.payload.get("number", r.point_id))))
            stages["fusion"] = stages.get("fusion", 0.0) + time.perf_counter() - t

            dense_exhausted = len(dense_hits) < k  # every stored incident has been seen
            if dense_exhausted:
                certified = True
            else:
                unseen_dense = dense_hits[-1].score
                unseen_bm25 = 0.0 if len(sparse_hits) < k else lexical.normalise(sparse_hits[-1].score, bound)
                unseen_max = hybrid_score(unseen_dense, unseen_bm25, self.dense_weight, self.bm25_weight)
                certified = len(scored) >= top_k and scored[top_k - 1].score >= unseen_max
            if certified or k >= self.max_candidate_k:
                if not certified:
                    logger.warning("hybrid top-%d not certified exact at K=%d", top_k, k)
                return SearchOutcome(scored[:top_k], len(known), k, certified, stages)
            k = min(k * 4, self.max_candidate_k)

    def _score(self, stored: StoredIncident, query_vector: np.ndarray, sparse_query: lexical.SparseVector,
               idf_by_term: dict[int, float], bound: float) -> ScoredIncident:
        dense = float(np.dot(query_vector, stored.dense)) if stored.dense is not None else 0.0
        raw = lexical.raw_score(sparse_query, stored.sparse or {}, idf_by_term)
        norm = lexical.normalise(raw, bound)
        return ScoredIncident(
            point_id=stored.point_id,
            payload=stored.payload,
            score=hybrid_score(dense, norm, self.dense_weight, self.bm25_weight),
            dense=dense,
            bm25=norm,
            bm25_raw=raw,
        )
