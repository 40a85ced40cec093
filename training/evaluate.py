"""Time-ordered evaluation of dense, BM25 and hybrid retrieval with the served scoring code.

Protocol (the same for every method, so numbers are comparable):
* incidents are ordered by `opened_at`; the first 60 % form the train split, the next 20 % validation,
  the last 20 % test (by time, no incident in two splits);
* every incident is a query, as it is when ServiceNow opens it: its candidates are *all* incidents
  opened strictly before it (any split), its true duplicates the linked ones among them. Most
  incidents have none, and a result marked similar on them is a false alarm: the per-incident view
  (`IncidentOutcome`, `incident_summary`) keeps each incident's top results for that; it also keeps each
  incident's best score among *all* other incidents except its links (`--pool all` calibration);
* the ranking and pair metrics use the incidents that do have an earlier linked incident (the
  "queries"); pairs: every positive, the hard negatives retrieval actually surfaces (the top non-links
  of each method) and random negatives from the rest of the candidates.

Scores are the served ones: the corpus is indexed with the product's indexer into a real store,
incident vectors (dense and BM25 sparse) are read back from it, each query vector is the one /similar
computes for the incident's text (encoded alone; training/scorer.py encodes each text once per run), and
BM25 uses the store's N and document frequencies with Qdrant's IDF. Queries are scored in blocks (matrix
products, the time-ordered mask applied per row). tests/test_evaluation.py proves /similar returns the same
numbers; tests/test_calibration_speed.py that the block path gives the per-query path's reports."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from indexing.dense_text import DenseText, TextEncoder
from training.data.labels import LabelledCorpus
from training.metrics import retrieval_metrics
from training.protocol import (
    INCIDENT_K,
    METHODS,
    POOLS,
    RETRIEVAL_KEYS,
    SPLITS,
    TOP_KEPT,
    Evaluation,
    IncidentOutcome,
    QueryResult,
    counts,
    query_positions,
    split_of,
    time_boundaries,
)
from training.scorer import OfflineScorer, QueryPathEncoder, build_scorer, scorer_for_incidents
from training.summaries import incident_rates, incident_summary, pair_arrays, summarise, top_scores

__all__ = ["INCIDENT_K", "METHODS", "POOLS", "RETRIEVAL_KEYS", "SPLITS", "TOP_KEPT", "Evaluation", "IncidentOutcome",
           "OfflineScorer", "QueryPathEncoder", "QueryResult", "build_scorer", "counts", "evaluate_corpus",
           "incident_rates", "incident_summary", "pair_arrays", "query_positions", "scorer_for_incidents",
           "split_of", "summarise", "time_boundaries", "top_scores"]

logger = logging.getLogger(__name__)

BLOCK = 256  # queries scored per matrix product (a block of 256 x 50,000 float64 scores is 100 MB per method)


def _top_order(scores: np.ndarray, k: int) -> np.ndarray:
    """The first k positions of the order (score descending, position ascending) without sorting everything:
    every position tied with the k-th best is kept before the exact sort, so the result equals the full
    lexsort's first k."""
    n = scores.size
    if n <= k:
        return np.lexsort((np.arange(n), -scores))
    kth = np.partition(-scores, k - 1)[k - 1]
    chosen = np.flatnonzero(-scores <= kth)
    return chosen[np.lexsort((chosen, -scores[chosen]))][:k]


def _query_vectors(corpus: LabelledCorpus, positions: Sequence[int], encoder: TextEncoder, dense_text: DenseText,
                   cache: dict[str, np.ndarray] | None) -> np.ndarray:
    rows = []
    for p in positions:
        inc = corpus.incidents[p]
        if cache is not None and inc.number in cache:
            rows.append(cache[inc.number])
            continue
        # alone, exactly as /similar encodes (the bundle's dense text mode); a QueryPathEncoder answers from
        # its memory when the index was built with it, so nothing is encoded twice
        vector, _ = dense_text.embed_one(encoder, inc.short_description, inc.description)
        if cache is not None:
            cache[inc.number] = vector
        rows.append(vector)
    return np.stack(rows)


def evaluate_corpus(corpus: LabelledCorpus, scorer: OfflineScorer, encoder: TextEncoder, hard_negatives: int = 5,
                    random_negatives: int = 10, seed: int = 0, progress: bool = True,
                    query_vectors: dict[str, np.ndarray] | None = None,
                    dense_text: DenseText | None = None, block: int = BLOCK) -> Evaluation:
    """Run the time-ordered protocol with every incident as a query (scorer rows = corpus order). Queries are
    embedded with `dense_text` (the bundle's mode; default `full`), as the service does, and scored `block`
    at a time."""
    dense_text = dense_text or DenseText()
    incidents = corpus.incidents
    linked = corpus.linked()
    opened = [i.opened_at for i in incidents]
    rng = np.random.default_rng(seed)
    results: list[QueryResult] = []
    outcomes: list[IncidentOutcome] = []
    position_of = {inc.number: p for p, inc in enumerate(incidents)}
    boundaries = time_boundaries(corpus)
    first_at: dict[Any, int] = {}  # incidents are sorted by opened_at: candidates of p are 0 .. first_at[opened]-1
    for p, moment in enumerate(opened):
        first_at.setdefault(moment, p)
    asked = [p for p in range(len(incidents)) if first_at[opened[p]] > 0]  # nothing earlier: nothing to flag
    with tqdm(total=len(asked), desc=f"evaluating {corpus.name}", unit="incident", disable=not progress) as bar:
        for start in range(0, len(asked), block):
            rows = asked[start : start + block]
            vectors = _query_vectors(corpus, rows, encoder, dense_text, query_vectors)
            block_scores = scorer.score_block(vectors, [incidents[p].text() for p in rows])
            for r, p in enumerate(rows):
                scores = {m: block_scores[m][r] for m in METHODS}
                outcome, result = _one_incident(corpus, p, scores, first_at[opened[p]], linked, position_of,
                                                boundaries, rng, hard_negatives, random_negatives)
                outcomes.append(outcome)
                if result is not None:
                    results.append(result)
            bar.update(len(rows))
    return Evaluation(corpus.name, corpus.label_kind, results, list(corpus.notes), outcomes)


def _one_incident(corpus: LabelledCorpus, p: int, scores: dict[str, np.ndarray], n_candidates: int,
                  linked: dict[str, set[str]], position_of: dict[str, int], boundaries: tuple[int, int],
                  rng: np.random.Generator, hard_negatives: int,
                  random_negatives: int) -> tuple[IncidentOutcome, QueryResult | None]:
    """Incident p asked as a new one, from its scores against every stored incident."""
    incidents = corpus.incidents
    inc = incidents[p]
    candidates = np.arange(n_candidates)
    links = {position_of[n] for n in linked.get(inc.number, ())}
    positives = {c for c in links if c < n_candidates}
    excluded = np.array(sorted(links | {p}), dtype=int)
    top: dict[str, list[tuple[float, bool]]] = {}
    orders: dict[str, np.ndarray] = {}
    best_all: dict[str, float] = {}
    for method in METHODS:
        cand_scores = scores[method][:n_candidates]
        if positives:  # ranking metrics need the whole order
            order = candidates[np.lexsort((candidates, -cand_scores))]
            orders[method] = order
        else:
            order = _top_order(cand_scores, TOP_KEPT)
        top[method] = [(float(cand_scores[c]), bool(c in positives)) for c in order[:TOP_KEPT]]
        others = scores[method].copy()
        others[excluded] = -np.inf
        best_all[method] = float(others.max()) if others.size else -np.inf
    split = split_of(p, boundaries)
    outcome = IncidentOutcome(inc.number, split, bool(positives), top, pool=n_candidates, best_all=best_all,
                              pool_all=len(incidents) - len(excluded))
    if not positives:
        return outcome, None
    metrics, negatives = {}, set()
    positive_list = sorted(positives)
    for method in METHODS:
        order = orders[method]
        relevance = np.isin(order, positive_list)
        metrics[method] = retrieval_metrics(relevance, len(positives))
        negatives.update(int(c) for c in order[~relevance][:hard_negatives])
    free = np.ones(n_candidates, dtype=bool)
    free[sorted(positives | negatives)] = False
    rest = candidates[free]
    if rest.size:
        negatives.update(int(c) for c in rng.choice(rest, size=min(random_negatives, len(rest)), replace=False))
    pairs = [(incidents[c].number, c in positives, {m: float(scores[m][c]) for m in METHODS})
             for c in sorted(positives | negatives)]
    return outcome, QueryResult(inc.number, split, metrics, pairs)
