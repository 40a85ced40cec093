"""Exact hybrid retrieval over a store.

Candidates are the union of the dense top-K and the BM25 top-K; for every candidate both parts are
computed exactly (cosine from its stored vector, BM25 from its stored sparse vector and the index's
IDF), so each returned score *is* the formula. The result is also certified to be the true hybrid
top-k (threshold algorithm): an incident outside both lists scores at most
w_d * (K-th dense score) + w_b * (K-th BM25 score); while the k-th best candidate is below that
bound, K grows. A candidate found in one list only is completed (its other part asked for) only when its
upper bound could reach the top-k (`CandidateSet`): the answer is the same, with fewer id-filtered calls.
Dense candidates come from HNSW, so for large indexes the certificate is as good as HNSW's recall; the scores
themselves are always exact."""

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
    candidate_k: int  # the longer list's final K (more than the first K: the top-k needed a second round)
    certified: bool
    stage_seconds: dict[str, float] = field(default_factory=dict)
    completed: int = 0  # candidates whose missing part was asked for (only those that could reach the top-k)


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
        lists = CandidateSet(self.dense_weight, self.bm25_weight, bound, self.candidate_growth)
        k = bm25_k = max(self.candidate_k, top_k)  # the dense list's K and the BM25 list's
        searched = (0, 0)
        while True:
            if k != searched[0]:
                lists.add_dense_list(timed("dense_search", self.store.search_dense, query_vector, k, where=where), k)
            if bm25_k != searched[1]:
                lists.add_bm25_list(timed("bm25_search", self.store.search_sparse, sparse_query, bm25_k,
                                          where=where), bm25_k)
            searched = (k, bm25_k)
            # both parts for the candidates that could still reach the top-k (one round of calls, as a rule)
            while batch := lists.to_complete(top_k):
                need_dense = [pid for pid in batch if pid not in lists.dense]
                need_bm25 = [pid for pid in batch if pid not in lists.raw]
                if need_dense:
                    lists.complete_dense(need_dense, timed(
                        "candidate_scores", self.store.search_dense, query_vector, len(need_dense), need_dense))
                if need_bm25:
                    lists.complete_bm25(need_bm25, timed(
                        "candidate_scores", self.store.search_sparse, sparse_query, len(need_bm25), need_bm25))
            t = time.perf_counter()
            certified = lists.certified(top_k)
            stages["fusion"] += time.perf_counter() - t
            if certified or k >= self.max_candidate_k:
                break
            if bm25_k == k and lists.bm25_alone_could_certify(top_k):  # once per K
                bm25_k = min(k * self.candidate_growth, self.max_candidate_k)
            else:
                k = min(k * self.candidate_growth, self.max_candidate_k)
                bm25_k = max(bm25_k, k)
        if not certified:
            logger.warning("hybrid top-%d not certified exact at K=%d", top_k, k)

        top = lists.ranked()[:top_k]
        stored = {s.point_id: s for s in
                  timed("fetch", self.store.fetch, [pid for _, pid in top], with_vectors=False)}
        words = self.bm25.analyzer.query_terms(query_text)
        rarest_first = sorted(words, key=lambda t: (doc_freq.get(t, 0), words[t]))
        results = []
        for score, pid in top:
            incident = stored.get(pid)
            terms = set(incident.terms) if incident else set()
            raw = lists.raw[pid]
            results.append(ScoredIncident(
                point_id=pid, payload=incident.payload if incident else {}, score=score, dense=lists.dense[pid],
                bm25=lexical.normalise(raw, bound), bm25_raw=raw,
                matched_terms=tuple(words[t] for t in rarest_first if t in terms)))
        return SearchOutcome(results, lists.seen(), max(k, bm25_k), certified, stages, completed=lists.completed)


class CandidateSet:
    """The candidates of one search and what is known of each (threshold algorithm, Fagin et al. 2003).

    The dense list is the top-K by cosine, the BM25 list the top-K by BM25: an incident in neither scores at
    most `unseen_bound()`. A candidate in one list only has an upper bound until its other part is asked for
    (the cosine of an incident outside the dense list is at most the list's K-th; its BM25 outside the BM25
    list at most that list's K-th, or exactly 0 when the BM25 list holds every incident sharing a term), so
    only the candidates whose bound reaches the k-th best lower bound are completed. The top-k among the exact
    scores is the true top-k once no bound, seen or unseen, exceeds its k-th score."""

    def __init__(self, dense_weight: float, bm25_weight: float, bound: float, growth: int = CANDIDATE_GROWTH) -> None:
        """`growth`: the factor the lists grow by (for the guess of `bm25_alone_could_certify`)."""
        self.dense_weight, self.bm25_weight, self.bound, self.growth = dense_weight, bm25_weight, bound, growth
        self.dense: dict[str, float] = {}  # exact cosine, from Qdrant
        self.raw: dict[str, float] = {}  # exact BM25 (Qdrant's IDF), 0 when no term is shared
        self.dense_floor: float | None = None  # the dense list's K-th cosine; None: it holds every incident
        self.bm25_floor = 0.0  # the BM25 list's K-th bm25_norm; 0: it holds every incident sharing a term
        self.bm25_complete = False  # until a BM25 list shorter than its K says it holds every match
        self.bm25_decay = 1.0  # the BM25 list's K-th score over its (K/growth)-th (normalised)
        self.completed = 0  # candidates whose other part was asked for

    def score(self, dense: float, bm25_norm: float) -> float:
        return hybrid_score(dense, bm25_norm, self.dense_weight, self.bm25_weight)

    def add_dense_list(self, hits: list, k: int) -> None:
        self.dense.update((h.point_id, cosine_in_range(h.score)) for h in hits)
        self.dense_floor = cosine_in_range(hits[-1].score) if len(hits) >= k else None
        self._zero_bm25_outside_a_complete_list()

    def add_bm25_list(self, hits: list, k: int) -> None:
        self.raw.update((h.point_id, h.score) for h in hits)
        self.bm25_complete = len(hits) < k
        self.bm25_floor = 0.0 if self.bm25_complete else lexical.normalise(hits[-1].score, self.bound)
        # how much the scores fell from rank K/growth to rank K: the guess for rank K to rank K*growth
        start = hits[len(hits) // self.growth - 1].score if len(hits) >= self.growth else 0.0
        self.bm25_decay = (self.bm25_floor / lexical.normalise(start, self.bound)
                           if start > 0 and not self.bm25_complete else 1.0)
        self._zero_bm25_outside_a_complete_list()

    def _zero_bm25_outside_a_complete_list(self) -> None:
        """A BM25 list that holds every incident sharing a term leaves the others at BM25 exactly 0: no call."""
        if self.bm25_complete:
            self.raw.update((pid, 0.0) for pid in self.dense if pid not in self.raw)

    def complete_dense(self, point_ids: list[str], hits: list) -> None:
        self.dense.update((h.point_id, cosine_in_range(h.score)) for h in hits)
        self.completed += len(point_ids)

    def complete_bm25(self, point_ids: list[str], hits: list) -> None:
        found = {h.point_id: h.score for h in hits}
        self.raw.update((pid, found.get(pid, 0.0)) for pid in point_ids)
        self.completed += len(point_ids)

    def ranked(self) -> list[tuple[float, str]]:
        """Exact scores, best first (ties by point id)."""
        return sorted(((self.score(self.dense[pid], lexical.normalise(self.raw[pid], self.bound)), pid)
                       for pid in self.dense.keys() & self.raw.keys()), key=lambda item: (-item[0], item[1]))

    def _kth(self, top_k: int) -> float:
        ranked = self.ranked()
        return ranked[top_k - 1][0] if len(ranked) >= top_k else float("-inf")

    def to_complete(self, top_k: int) -> list[str]:
        """The candidates still lacking a part that could reach the top-k: those whose upper bound reaches the
        k-th best *lower* bound (a candidate's exact score, or for one lacking its BM25 part its cosine alone, for
        one lacking its cosine its BM25 with a cosine of -1). The k-th exact score can only be higher, so one
        round of completion calls does: nothing left out could have entered the top-k. Ties are included, so the
        order by point id stays exact."""
        floor = self.dense_floor if self.dense_floor is not None else 1.0  # a full dense list leaves none out
        partial: list[tuple[float, float, str]] = []  # (upper bound, lower bound, point id)
        for pid in self.dense.keys() ^ self.raw.keys():
            if pid in self.dense:
                partial.append((self.score(self.dense[pid], self.bm25_floor), self.score(self.dense[pid], 0.0), pid))
            else:
                bm25_norm = lexical.normalise(self.raw[pid], self.bound)
                partial.append((self.score(floor, bm25_norm), self.score(-1.0, bm25_norm), pid))
        if not partial:
            return []
        lower = sorted([score for score, _ in self.ranked()] + [lb for _, lb, _ in partial], reverse=True)
        kth_lower = lower[top_k - 1] if len(lower) >= top_k else float("-inf")
        return [pid for ub, _, pid in partial if ub >= kth_lower]

    def unseen_bound(self) -> float | None:
        """The most an incident in neither list can score; None when the dense list holds every incident."""
        return None if self.dense_floor is None else self.score(self.dense_floor, self.bm25_floor)

    def certified(self, top_k: int) -> bool:
        unseen = self.unseen_bound()
        if unseen is None:
            return True
        ranked = self.ranked()
        return len(ranked) >= top_k and ranked[top_k - 1][0] >= unseen

    def bm25_alone_could_certify(self, top_k: int) -> bool:
        """Whether a BM25 list `growth` times longer is likely to certify the top-k alone (it lowers only the BM25
        part of the unseen bound; BM25 lists are the cheaper to lengthen): its K-th score is guessed to fall by
        the ratio it fell over the last span of that length (the (K/growth)-th to the K-th). A wrong guess costs
        one more round, never exactness."""
        if self.dense_floor is None or self.bm25_complete:
            return False
        return self._kth(top_k) >= self.score(self.dense_floor, self.bm25_floor * self.bm25_decay)

    def seen(self) -> int:
        return len(self.dense.keys() | self.raw.keys())
