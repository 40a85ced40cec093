"""The hybrid score, and the scoring configuration a bundle carries. One function and one typed object, used by
the service, the evaluation, calibration and training alike: every default lives here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_DENSE_WEIGHT = 0.7
DEFAULT_BM25_WEIGHT = 0.3
DEFAULT_K1 = 1.2
DEFAULT_B = 0.75
# New bundles normalise BM25 by the query's own score; bundles written before the key existed were served
# with the IDF upper bound, and still are.
DEFAULT_NORMALIZATION = "query_self_score"
LEGACY_NORMALIZATION = "idf_upper_bound"
# New bundles bound a query to its first 256 distinct BM25 terms: binds on no sample incident and on 0.4 % of
# SeaMonkey bug reports (their p99 is 186 terms), while a pasted 20,000-character log stays cheap.
DEFAULT_MAX_QUERY_TERMS = 256


def cosine_in_range(score: float) -> float:
    """A cosine from float32 arithmetic, clamped into [-1, 1]: a vector against itself can come back as
    1.0000001 (Qdrant and the offline matrix product alike). Moves a score by at most ~1e-7 and only past
    +-1, where no threshold lies, so it changes no flag and no false-alarm rate."""
    return min(1.0, max(-1.0, float(score)))


def hybrid_score(dense: float, bm25_norm: float, dense_weight: float = DEFAULT_DENSE_WEIGHT,
                 bm25_weight: float = DEFAULT_BM25_WEIGHT) -> float:
    """score = w_dense * cosine(query, incident) + w_bm25 * bm25_norm(query, incident)."""
    return dense_weight * dense + bm25_weight * bm25_norm


@dataclass(frozen=True)
class ScoringConfig:
    """What a bundle says about scoring (`hybrid` and `bm25` in its manifest), parsed once."""

    analyzer: str
    dense_weight: float = DEFAULT_DENSE_WEIGHT
    bm25_weight: float = DEFAULT_BM25_WEIGHT
    k1: float = DEFAULT_K1
    b: float = DEFAULT_B
    normalization: str = DEFAULT_NORMALIZATION
    max_query_terms: int | None = None  # distinct BM25 query terms kept (None: all); new bundles: 256

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> ScoringConfig:
        """From a manifest already checked by `indexing.bundle.check_scoring` (absent keys: what the bundles
        that lacked them were served with)."""
        bm25, hybrid = manifest["bm25"], manifest["hybrid"]
        max_terms = bm25.get("max_query_terms")
        return cls(analyzer=str(bm25["analyzer"]), dense_weight=float(hybrid["dense_weight"]),
                   bm25_weight=float(hybrid["bm25_weight"]), k1=float(bm25["k1"]), b=float(bm25["b"]),
                   normalization=str(bm25.get("normalization", LEGACY_NORMALIZATION)),
                   max_query_terms=None if max_terms is None else int(max_terms))
