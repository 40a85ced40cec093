"""The hybrid search completes only the candidates that could reach the top-k (indexing.search.CandidateSet), and
its answer is still the exact top-k: checked against brute force on random score tables, including ties and
lists that hold every incident."""

from __future__ import annotations

import numpy as np
import pytest

from indexing import lexical
from indexing.search import CandidateSet
from indexing.store.base import Hit

W_DENSE, W_BM25 = 0.7, 0.3


def _top(scores: dict[str, float], k: int) -> list[Hit]:
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [Hit(pid, s) for pid, s in ranked]


def _answer(dense: dict[str, float], raw: dict[str, float], bound: float, k_list: int, top_k: int
            ) -> tuple[list[tuple[float, str]], int, bool]:
    """What the search does with one dense list and one BM25 list of length `k_list`, completion calls answered
    from the tables (as Qdrant answers them: a BM25 completion returns only incidents sharing a term)."""
    lists = CandidateSet(W_DENSE, W_BM25, bound)
    lists.add_dense_list(_top(dense, k_list), k_list)
    lists.add_bm25_list(_top({p: s for p, s in raw.items() if s > 0}, k_list), k_list)
    while batch := lists.to_complete(top_k):
        need_dense = [p for p in batch if p not in lists.dense]
        need_bm25 = [p for p in batch if p not in lists.raw]
        lists.complete_dense(need_dense, [Hit(p, dense[p]) for p in need_dense])
        lists.complete_bm25(need_bm25, [Hit(p, raw[p]) for p in need_bm25 if raw[p] > 0])
    return lists.ranked()[:top_k], lists.completed, lists.certified(top_k)


def _tables(rng: np.random.Generator, n: int, coupled: bool, ties: bool) -> tuple[dict, dict]:
    dense = rng.uniform(0.2, 0.95, n)
    raw = np.where(rng.random(n) < 0.6, rng.gamma(2.0, 2.0, n), 0.0)
    if coupled:  # BM25 that agrees with the cosine, as in real incidents
        raw = np.where(raw > 0, raw + 8 * dense, 0.0)
    if ties:
        dense, raw = np.round(dense, 1), np.round(raw)
    ids = [f"p{i:04d}" for i in range(n)]
    return dict(zip(ids, dense.tolist(), strict=True)), dict(zip(ids, raw.tolist(), strict=True))


@pytest.mark.parametrize("coupled", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_pruned_completion_gives_the_brute_force_top_k(coupled: bool, ties: bool) -> None:
    rng = np.random.default_rng(7 + 2 * coupled + ties)
    completed_total = exhaustive_total = certified = 0
    for _ in range(60):
        n = int(rng.integers(5, 400))
        dense, raw = _tables(rng, n, coupled, ties)
        bound = max(raw.values()) * float(rng.uniform(0.5, 1.2)) or 1.0
        top_k, k_list = int(rng.integers(1, 11)), int(rng.integers(5, 60))
        answer, completed, is_certified = _answer(dense, raw, bound, k_list, top_k)
        brute = sorted(((W_DENSE * dense[p] + W_BM25 * lexical.normalise(raw[p], bound), p) for p in dense),
                       key=lambda item: (-item[0], item[1]))[:top_k]
        if is_certified:
            certified += 1
            assert [p for _, p in answer] == [p for _, p in brute]
            assert [s for s, _ in answer] == pytest.approx([s for s, _ in brute], abs=1e-12)
        # without pruning: every candidate in one list only (but a short BM25 list's zeros need no call)
        dense_list = {h.point_id for h in _top(dense, k_list)}
        bm25_list = {h.point_id for h in _top({p: s for p, s in raw.items() if s > 0}, k_list)}
        exhaustive_total += len(bm25_list - dense_list) + (len(dense_list - bm25_list) if len(bm25_list) >= k_list
                                                            else 0)
        completed_total += completed
    assert certified > 20
    assert completed_total < exhaustive_total  # the pruning does prune


def test_a_full_dense_list_certifies_and_a_short_bm25_list_means_zero() -> None:
    """Fewer dense hits than asked for: every incident is a candidate (certified without an unseen bound); fewer
    BM25 hits than asked for: the others share no term, their BM25 is 0 without a completion call."""
    lists = CandidateSet(W_DENSE, W_BM25, bound=10.0)
    lists.add_dense_list([Hit("a", 0.9), Hit("b", 0.5), Hit("c", 0.4)], 10)
    lists.add_bm25_list([Hit("c", 9.0)], 10)
    assert lists.to_complete(2) == []
    assert lists.completed == 0
    assert lists.certified(2)
    assert [p for _, p in lists.ranked()] == ["a", "c", "b"]  # 0.63, 0.55, 0.35
    assert lists.raw["a"] == 0.0
