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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexing import lexical
from indexing.scoring import LEGACY_NORMALIZATION, cosine_in_range, hybrid_score
from indexing.store.base import IncidentFilter, IncidentStore

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 5  # results per /similar answer unless the caller asks otherwise (evaluation reports this k too)

# Where a search spends its time (SearchOutcome.stage_seconds, the service's stage histogram):
# bm25_stats = document frequencies for the BM25 bound; dense_search / bm25_search = the top-K queries (HNSW
# graph, sparse index); candidate_scores = the part each candidate still lacks (exact cosine of BM25-only
# candidates, BM25 of dense-only ones: id-filtered queries); fusion = hybrid scores + certificate; fetch = payloads
CANDIDATE_GROWTH = 4  # benchmarks/results/scale-search-100k*.md
SEARCH_STAGES = ("bm25_stats", "dense_search", "bm25_search", "candidate_scores", "fusion", "fetch")


@dataclass(frozen=True)
class ScoredIncident:
    point_id: str
    payload: dict[str, Any]
    score: float
    dense: float
    bm25: float  # normalised, in [0, 1]: the value that enters the score
    bm25_raw: float  # Qdrant's BM25 value (IDF-weighted, before normalisation)
    matched_terms: tuple[str, ...] = ()  # query words this incident contains, rarest in the index first


@dataclass
class SearchOutcome:
    results: list[ScoredIncident]
    candidates: int
    candidate_k: int
    certified: bool
    stage_seconds: dict[str, float] = field(default_factory=dict)


class HybridSearcher:
    def __init__(self, store: IncidentStore, bm25: lexical.BM25Encoder, dense_weight: float, bm25_weight: float,
                 candidate_k: int = 100, max_candidate_k: int = 1600,
                 normalization: str = LEGACY_NORMALIZATION, candidate_growth: int = CANDIDATE_GROWTH) -> None:
        """`candidate_growth`: the factor K grows by while the top-k is not certified (at least 2)."""
        if candidate_growth < 2:
            raise ValueError(f"candidate_growth must be at least 2, got {candidate_growth}")
        self.candidate_growth = candidate_growth
        self.store = store
        self.normalization = normalization
        self.bm25 = bm25
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.candidate_k = candidate_k
        self.max_candidate_k = max_candidate_k

    def search(self, query_vector: np.ndarray, query_text: str, top_k: int,
               where: IncidentFilter | None = None) -> SearchOutcome:
        """The exact hybrid top-k among the incidents matching `where` (applied by Qdrant in every query).
        BM25 statistics (IDF, the normalising bound) stay those of the whole index, so an incident's
        score does not depend on the filter."""
        stages = dict.fromkeys(SEARCH_STAGES, 0.0)

        def timed(stage: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[stage] += time.perf_counter() - t

        sparse_query = self.bm25.query(query_text)
        t0 = time.perf_counter()
        n_docs, doc_freq = self.store.bm25_stats(sparse_query.indices)
        stages["bm25_stats"] = time.perf_counter() - t0
        bound = lexical.upper_bound(
            sparse_query, {t: lexical.idf(n_docs, doc_freq.get(t, 0)) for t in sparse_query.indices}, doc_freq,
            self.normalization, self.bm25.params)

        k = max(self.candidate_k, top_k)
        dense: dict[str, float] = {}  # exact cosine, from Qdrant
        raw: dict[str, float] = {}  # exact BM25 (Qdrant's IDF), 0 when no term is shared
        while True:
            dense_hits = timed("dense_search", self.store.search_dense, query_vector, k, where=where)
            sparse_hits = timed("bm25_search", self.store.search_sparse, sparse_query, k, where=where)
            dense.update((h.point_id, cosine_in_range(h.score)) for h in dense_hits)
            raw.update((h.point_id, h.score) for h in sparse_hits)
            # both parts for every candidate: ask Qdrant for the part each candidate still lacks
            need_dense = [pid for pid in raw if pid not in dense]
            need_bm25 = [pid for pid in dense if pid not in raw]
            if need_dense:
                dense.update((h.point_id, cosine_in_range(h.score)) for h in timed(
                    "candidate_scores", self.store.search_dense, query_vector, len(need_dense), need_dense))
            if need_bm25:
                found = {h.point_id: h.score for h in timed(
                    "candidate_scores", self.store.search_sparse, sparse_query, len(need_bm25), need_bm25)}
                raw.update((pid, found.get(pid, 0.0)) for pid in need_bm25)

            t = time.perf_counter()
            scored = sorted(
                ((hybrid_score(dense[pid], lexical.normalise(raw[pid], bound), self.dense_weight, self.bm25_weight),
                  pid) for pid in dense.keys() & raw.keys()),
                key=lambda item: (-item[0], item[1]),
            )
            if len(dense_hits) < k:  # the dense list holds every stored incident: nothing unseen
                certified = True
            else:
                unseen_bm25 = 0.0 if len(sparse_hits) < k else lexical.normalise(sparse_hits[-1].score, bound)
                unseen_max = hybrid_score(cosine_in_range(dense_hits[-1].score), unseen_bm25,
                                          self.dense_weight, self.bm25_weight)
                certified = len(scored) >= top_k and scored[top_k - 1][0] >= unseen_max
            stages["fusion"] += time.perf_counter() - t
            if certified or k >= self.max_candidate_k:
                break
            k = min(k * self.candidate_growth, self.max_candidate_k)
        if not certified:
            logger.warning("hybrid top-%d not certified exact at K=%d", top_k, k)

        top = scored[:top_k]
        stored = {s.point_id: s for s in
                  timed("fetch", self.store.fetch, [pid for _, pid in top], with_vectors=False)}
        words = self.bm25.analyzer.query_terms(query_text)
        rarest_first = sorted(words, key=lambda t: (doc_freq.get(t, 0), words[t]))
        results = []
        for score, pid in top:
            incident = stored.get(pid)
            terms = set(incident.terms) if incident else set()
            results.append(ScoredIncident(
                point_id=pid, payload=incident.payload if incident else {}, score=score, dense=dense[pid],
                bm25=lexical.normalise(raw[pid], bound), bm25_raw=raw[pid],
                matched_terms=tuple(words[t] for t in rarest_first if t in terms)))
        return SearchOutcome(results, len(dense.keys() | raw.keys()), k, certified, stages)
