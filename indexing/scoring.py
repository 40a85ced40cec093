"""The hybrid score. One function, used by the service and by offline evaluation alike."""

from __future__ import annotations

DEFAULT_DENSE_WEIGHT = 0.7
DEFAULT_BM25_WEIGHT = 0.3


def hybrid_score(dense: float, bm25_norm: float, dense_weight: float = DEFAULT_DENSE_WEIGHT,
                 bm25_weight: float = DEFAULT_BM25_WEIGHT) -> float:
    """score = w_dense * cosine(query, incident) + w_bm25 * bm25_norm(query, incident)."""
    return dense_weight * dense + bm25_weight * bm25_norm
