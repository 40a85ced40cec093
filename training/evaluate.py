"""Time-ordered evaluation of dense, BM25 and hybrid retrieval with the served scoring code.

Protocol (the same for every method, so numbers are comparable):
* incidents are ordered by `opened_at`; the first 60 % form the train split, the next 20 % validation,
  the last 20 % test (by time, no incident in two splits);
* every incident is a query, as it is when ServiceNow opens it: its candidates are *all* incidents
  opened strictly before it (any split), its true duplicates the linked ones among them. Most
  incidents have none, and a result marked similar on them is a false alarm: the per-incident view
  (`IncidentOutcome`, `incident_summary`) keeps each incident's top results for that;
* the ranking and pair metrics use the incidents that do have an earlier linked incident (the
  "queries"); pairs: every positive, the hard negatives retrieval actually surfaces (the top non-links
  of each method) and random negatives from the rest of the candidates.

Scores are the served ones: the corpus is indexed with the product's indexer into a real store,
incident vectors (dense and BM25 sparse) are read back from it, queries are encoded one at a time by
the bundle's ONNX encoder exactly as /similar does, and BM25 uses the store's N and document
frequencies with Qdrant's IDF. tests/test_evaluation.py proves /similar returns the same numbers."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexing import lexical
from indexing.bundle import Bundle
from indexing.dense_text import DenseText, TextEncoder
from indexing.encoder import OnnxEncoder
from indexing.errors import InputDataError
from indexing.incidents import Incident
from indexing.indexer import bm25_encoder_for, index_incidents
from indexing.scoring import LEGACY_NORMALIZATION, hybrid_score
from indexing.search import DEFAULT_TOP_K
from indexing.store.base import IncidentStore
from indexing.store.edge import EdgeStore
from training.data.labels import LabelledCorpus
from training.metrics import (
    at_threshold,
    bootstrap_ci,
    clopper_pearson_interval,
    pr_auc,
    retrieval_metrics,
    roc_auc,
    spearman,
)

logger = logging.getLogger(__name__)

METHODS = ("dense", "bm25", "hybrid")
SPLITS = ("train", "validation", "test")
RETRIEVAL_KEYS = ("recall@1", "recall@5", "recall@10", "mrr", "map", "ndcg@10")
TOP_KEPT = 10  # results kept per incident for the per-incident view (the service answers top_k <= 50, default 5)
INCIDENT_K = (DEFAULT_TOP_K, 1)  # the per-incident rates are reported for the service's default top_k and for 1


class OfflineScorer:
    """Scores a query against every stored incident with the served formulas."""

    def __init__(self, dense: np.ndarray, sparse_docs: Sequence[dict[int, float]], bm25: lexical.BM25Encoder,
                 dense_weight: float, bm25_weight: float, normalization: str = LEGACY_NORMALIZATION) -> None:
        self.dense = dense
        self.normalization = normalization
        self.bm25 = bm25
        self.dense_weight, self.bm25_weight = dense_weight, bm25_weight
        self.n_docs = len(sparse_docs)
        postings: dict[int, list[tuple[int, float]]] = {}
        for row, doc in enumerate(sparse_docs):
            for term, weight in doc.items():
                postings.setdefault(term, []).append((row, weight))
        self.postings = {t: (np.array([r for r, _ in p]), np.array([w for _, w in p])) for t, p in postings.items()}

    @classmethod
    def from_store(cls, store: IncidentStore, point_ids: Sequence[str], bm25: lexical.BM25Encoder,
                   dense_weight: float, bm25_weight: float, normalization: str = LEGACY_NORMALIZATION) -> OfflineScorer:
        stored = {}
        for start in range(0, len(point_ids), 256):
            for s in store.fetch(point_ids[start : start + 256], with_vectors=True):
                stored[s.point_id] = s
        missing = [p for p in point_ids if p not in stored]
        if missing:
            raise InputDataError(f"{len(missing)} incidents of the corpus are not in the index")
        if store.count() != len(point_ids):
            raise InputDataError(f"the index holds {store.count()} incidents, the corpus {len(point_ids)}: "
                                 "evaluate on an index of exactly this corpus")
        dense = np.stack([stored[p].dense for p in point_ids]).astype(np.float32)
        return cls(dense, [stored[p].sparse or {} for p in point_ids], bm25, dense_weight, bm25_weight, normalization)

    def score(self, query_vector: np.ndarray, query_text: str) -> dict[str, np.ndarray]:
        sparse_q = self.bm25.query(query_text)
        raw = np.zeros(self.n_docs)
        doc_freq = {}
        idf = {}
        for term in sparse_q.indices:
            rows = self.postings.get(term)
            doc_freq[term] = 0 if rows is None else len(rows[0])
            idf[term] = lexical.idf(self.n_docs, doc_freq[term])
        for term, qtf in zip(sparse_q.indices, sparse_q.values, strict=True):
            if term in self.postings:
                rows, weights = self.postings[term]
                raw[rows] += qtf * idf[term] * weights
        bound = lexical.upper_bound(sparse_q, idf, doc_freq, self.normalization, self.bm25.params)
        bm25 = np.clip(raw / bound, 0.0, 1.0) if bound > 0 else np.zeros(self.n_docs)
        dense = self.dense @ query_vector.astype(np.float32)
        return {"dense": dense.astype(float), "bm25": bm25,
                "hybrid": hybrid_score(dense.astype(float), bm25, self.dense_weight, self.bm25_weight), "raw": raw}


def scorer_for_incidents(incidents: Sequence[Incident], dense: np.ndarray, analyzer: str, k1: float, b: float,
                         normalization: str, dense_weight: float, bm25_weight: float) -> OfflineScorer:
    """An OfflineScorer over incidents not (yet) in a store: BM25 statistics computed from the incidents
    themselves with the served analyzer and formulas."""
    analyzer_obj = lexical.Analyzer.from_name(analyzer)
    avgdl = lexical.average_document_length(analyzer_obj, [(i.short_description, i.description) for i in incidents])
    bm25 = lexical.BM25Encoder(analyzer_obj, lexical.BM25Params(k1, b, avgdl))
    sparse = [bm25.document(i.short_description, i.description) for i in incidents]
    return OfflineScorer(dense, [dict(zip(s.indices, s.values, strict=True)) for s in sparse], bm25,
                         dense_weight, bm25_weight, normalization)


@dataclass
class QueryResult:
    number: str
    split: str
    metrics: dict[str, dict[str, float]]  # method -> metric -> value
    pairs: list[tuple[str, bool, dict[str, float]]]  # (candidate number, is_link, method -> score)


@dataclass
class IncidentOutcome:
    """One incident asked as a new one: its best TOP_KEPT earlier incidents per method, best first, each
    (score, is a true duplicate). `has_duplicate`: some incident linked to it was opened before it."""

    number: str
    split: str
    has_duplicate: bool
    top: dict[str, list[tuple[float, bool]]]


@dataclass
class Evaluation:
    corpus: str
    label_kind: str
    queries: list[QueryResult]  # incidents with an earlier duplicate: ranking and pair metrics
    notes: list[str] = field(default_factory=list)
    incidents: list[IncidentOutcome] = field(default_factory=list)  # every incident: the per-incident view

    def split(self, name: str) -> list[QueryResult]:
        return [q for q in self.queries if q.split == name]

    def incident_split(self, *names: str) -> list[IncidentOutcome]:
        return [o for o in self.incidents if o.split in names]


def query_positions(corpus: LabelledCorpus) -> list[int]:
    """Positions (in time order) of the incidents linked to an earlier incident: the queries."""
    incidents = corpus.incidents
    linked = corpus.linked()
    position_of = {inc.number: p for p, inc in enumerate(incidents)}
    return [p for p, inc in enumerate(incidents)
            if any(incidents[position_of[n]].opened_at < inc.opened_at for n in linked.get(inc.number, ()))]  # type: ignore[operator]


def time_boundaries(corpus: LabelledCorpus, fractions: tuple[float, float] = (0.6, 0.8)) -> tuple[int, int]:
    """Split the timeline where 60 % and 80 % of the queries have been opened: every incident before the
    first boundary is train, then validation, then test (disjoint time ranges, no incident in two
    splits). Cutting by queries rather than by incidents keeps enough queries in the later splits
    when links cluster in time (SeaMonkey: 35 of 46 queries fall in the first 60 % of reports)."""
    queries = query_positions(corpus)
    if not queries:
        raise InputDataError(f"{corpus.name}: no incident links to an earlier one, so there is no query")
    return queries[int(fractions[0] * len(queries))], queries[min(int(fractions[1] * len(queries)), len(queries) - 1)]


def split_of(position: int, boundaries: tuple[int, int]) -> str:
    if position < boundaries[0]:
        return "train"
    return "validation" if position < boundaries[1] else "test"


def evaluate_corpus(corpus: LabelledCorpus, scorer: OfflineScorer, encoder: TextEncoder, hard_negatives: int = 5,
                    random_negatives: int = 10, seed: int = 0, progress: bool = True,
                    query_vectors: dict[str, np.ndarray] | None = None,
                    dense_text: DenseText | None = None) -> Evaluation:
    """Run the time-ordered protocol with every incident as a query (scorer rows = corpus order). Queries are
    embedded with `dense_text` (the bundle's mode; default `full`), as the service does."""
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
    for p in tqdm(range(len(incidents)), desc=f"evaluating {corpus.name}", unit="incident", disable=not progress):
        inc = incidents[p]
        n_candidates = first_at[opened[p]]
        if n_candidates == 0:
            continue  # nothing earlier: nothing to find and nothing to flag
        candidates = np.arange(n_candidates)
        positives = {position_of[n] for n in linked.get(inc.number, ()) if position_of[n] < n_candidates}
        if query_vectors is not None and inc.number in query_vectors:
            vector = query_vectors[inc.number]
        else:
            # one at a time, exactly as /similar encodes (the bundle's dense text mode)
            vector, _ = dense_text.embed_one(encoder, inc.short_description, inc.description)
            if query_vectors is not None:
                query_vectors[inc.number] = vector
        scores = scorer.score(vector, inc.text())
        top: dict[str, list[tuple[float, bool]]] = {}
        orders: dict[str, np.ndarray] = {}
        for method in METHODS:
            cand_scores = scores[method][candidates]
            order = candidates[np.lexsort((candidates, -cand_scores))]
            orders[method] = order
            top[method] = [(float(cand_scores[c]), bool(c in positives)) for c in order[:TOP_KEPT]]
        split = split_of(p, boundaries)
        outcomes.append(IncidentOutcome(inc.number, split, bool(positives), top))
        if not positives:
            continue
        metrics, negatives = {}, set()
        for method in METHODS:
            order = orders[method]
            relevance = [c in positives for c in order]
            metrics[method] = retrieval_metrics(relevance, len(positives))
            negatives.update(int(c) for c in order[[not r for r in relevance]][:hard_negatives])
        rest = [int(c) for c in candidates if c not in positives and c not in negatives]
        if rest:
            negatives.update(int(c) for c in rng.choice(rest, size=min(random_negatives, len(rest)), replace=False))
        pairs = [(incidents[c].number, c in positives, {m: float(scores[m][c]) for m in METHODS})
                 for c in sorted(positives | negatives)]
        results.append(QueryResult(inc.number, split, metrics, pairs))
    return Evaluation(corpus.name, corpus.label_kind, results, list(corpus.notes), outcomes)


def top_scores(outcomes: Sequence[IncidentOutcome], method: str, duplicate: bool | None = None) -> np.ndarray:
    """Each incident's best score (-inf when it had no candidate), optionally only those with/without a
    duplicate. An incident is flagged at threshold t, for any k, exactly when this score is >= t."""
    return np.array([o.top[method][0][0] if o.top[method] else -np.inf for o in outcomes
                     if duplicate is None or o.has_duplicate == duplicate])


def incident_rates(outcomes: Sequence[IncidentOutcome], method: str, threshold: float, k: int) -> dict[str, int]:
    """Counts behind the per-incident rates at `threshold` with the top `k` results shown."""
    counts = dict.fromkeys(("without_duplicate", "false_alarms", "with_duplicate", "hits", "flagged",
                            "flagged_true"), 0)
    for o in outcomes:
        shown = o.top[method][:k]
        flagged = [is_dup for score, is_dup in shown if score >= threshold]
        counts["flagged"] += len(flagged)
        counts["flagged_true"] += sum(flagged)
        if o.has_duplicate:
            counts["with_duplicate"] += 1
            counts["hits"] += int(any(flagged))
        else:
            counts["without_duplicate"] += 1
            counts["false_alarms"] += int(bool(flagged))
    return counts


def _rate(successes: int, trials: int) -> dict[str, Any]:
    return {"value": successes / trials if trials else float("nan"), "count": successes, "of": trials,
            "ci95": clopper_pearson_interval(successes, trials)}


def incident_summary(outcomes: Sequence[IncidentOutcome], threshold: float, n_boot: int = 1000,
                     k_values: Sequence[int] = INCIDENT_K) -> dict[str, Any]:
    """The per-incident view at `threshold`, per method and k: false-alarm rate (incidents without an earlier
    duplicate that get at least one result marked similar), hit rate (incidents with one whose top k holds a
    true duplicate marked similar), precision of the flag (results marked similar that are true
    duplicates). Rates: 95 % Clopper-Pearson intervals (incidents are the units); flag precision: 95 %
    bootstrap over incidents (an incident's results move together)."""
    out: dict[str, Any] = {"incidents": len(outcomes),
                           "with_duplicate": sum(o.has_duplicate for o in outcomes),
                           "without_duplicate": sum(not o.has_duplicate for o in outcomes), "threshold": threshold}
    if not outcomes:
        return out
    for method in METHODS:
        section: dict[str, Any] = {}
        for k in k_values:
            per = [incident_rates([o], method, threshold, k) for o in outcomes]
            c = {key: sum(r[key] for r in per) for key in per[0]}  # the totals are the sums of the per-incident counts
            flagged = np.array([r["flagged"] for r in per])
            true = np.array([r["flagged_true"] for r in per])

            def precision(idx: np.ndarray, f: np.ndarray = flagged, t: np.ndarray = true) -> float:
                total = f[idx].sum()
                return float(t[idx].sum() / total) if total else float("nan")

            section[f"top{k}"] = {
                "false_alarm_rate": _rate(c["false_alarms"], c["without_duplicate"]),
                "hit_rate": _rate(c["hits"], c["with_duplicate"]),
                "flag_precision": {"value": c["flagged_true"] / c["flagged"] if c["flagged"] else float("nan"),
                                   "count": c["flagged_true"], "of": c["flagged"],
                                   "ci95": bootstrap_ci(len(outcomes), precision, n_boot)},
            }
        out[method] = section
    return out


def pair_arrays(queries: Sequence[QueryResult], method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, labels and the owning query index of every pair."""
    scores, labels, owner = [], [], []
    for qi, q in enumerate(queries):
        for _, is_link, s in q.pairs:
            scores.append(s[method])
            labels.append(is_link)
            owner.append(qi)
    return np.array(scores), np.array(labels, dtype=bool), np.array(owner)


class _PairGroups:
    """Pair indices of each query, computed once, so a bootstrap resample of queries is a concatenation."""

    def __init__(self, owner: np.ndarray, n_queries: int) -> None:
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(n_queries + 1))
        self.groups = [order[bounds[q] : bounds[q + 1]] for q in range(n_queries)]

    def __call__(self, queries_idx: np.ndarray) -> np.ndarray:
        return np.concatenate([self.groups[q] for q in queries_idx]) if len(queries_idx) else np.array([], dtype=int)


def summarise(queries: Sequence[QueryResult], threshold: float | None, n_boot: int = 1000) -> dict[str, Any]:
    """Headline numbers with 95 % bootstrap intervals (queries resampled, their pairs with them)."""
    n = len(queries)
    out: dict[str, Any] = {"queries": n}
    if n == 0:
        return out
    for method in METHODS:
        section: dict[str, Any] = {}
        for key in RETRIEVAL_KEYS:
            values = np.array([q.metrics[method][key] for q in queries])
            section[key] = {"value": float(values.mean()),
                            "ci95": bootstrap_ci(n, lambda idx, v=values: float(v[idx].mean()), n_boot)}
        scores, labels, owner = pair_arrays(queries, method)
        groups = _PairGroups(owner, n)

        def on_resample(fn, s=scores, lab=labels, g=groups):  # type: ignore[no-untyped-def]
            def statistic(idx: np.ndarray) -> float:
                rows = g(idx)
                return float(fn(s[rows], lab[rows]))
            return statistic

        for name, fn in (("roc_auc", roc_auc), ("pr_auc", pr_auc), ("spearman", spearman)):
            section[name] = {"value": fn(scores, labels), "ci95": bootstrap_ci(n, on_resample(fn), n_boot)}
        if threshold is not None:
            section["at_threshold"] = at_threshold(scores, labels, threshold)
            section["at_threshold"]["fpr_ci95"] = bootstrap_ci(
                n, on_resample(lambda s, lab: at_threshold(s, lab, threshold)["fpr"]), n_boot)
        out[method] = section
    _, labels, _ = pair_arrays(queries, "hybrid")
    out["pairs"] = {"positive": int(labels.sum()), "negative": int((~labels).sum()),
                    "ratio": f"1:{(~labels).sum() / max(labels.sum(), 1):.1f}"}
    return out


def counts(corpus: LabelledCorpus) -> dict[str, int]:
    boundaries = time_boundaries(corpus)
    c = Counter(split_of(p, boundaries) for p in range(len(corpus.incidents)))
    return {s: c.get(s, 0) for s in SPLITS}


def build_scorer(bundle: Bundle, corpus: LabelledCorpus, index_dir: Path, normalization: str | None = None,
                 progress: bool = True, encoder: TextEncoder | None = None) -> tuple[OfflineScorer, TextEncoder]:
    """Index the corpus with the product's indexer into a fresh Qdrant Edge index at `index_dir`
    and read the vectors back: the evaluation scores what the service would serve. `encoder`: the bundle's
    encoder when the caller already has one (e.g. a MemoEncoder shared by several dense text modes)."""
    if encoder is None:
        encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length)
    store = EdgeStore(index_dir)
    try:
        meta = store.meta()
        point_ids = [i.point_id for i in corpus.incidents]
        reusable = (meta is not None and meta.encoder_id == bundle.encoder_id
                    and meta.analyzer == bundle.bm25["analyzer"] and store.count() == len(point_ids)
                    and len(store.fetch(point_ids, with_vectors=False)) == len(point_ids))
        if reusable:
            logger.info("reusing the evaluation index at %s (same encoder, analyzer and incidents)", index_dir)
        else:
            if meta is not None:
                raise InputDataError(f"{index_dir} holds an index of other incidents or another encoder; "
                                     "remove it or evaluate elsewhere")
            index_incidents(corpus.incidents, bundle, encoder, store, progress=progress)
        meta = store.meta()
        assert meta is not None
        scorer = OfflineScorer.from_store(
            store, [i.point_id for i in corpus.incidents], bm25_encoder_for(meta, bundle.max_query_terms),
            bundle.dense_weight,
            bundle.bm25_weight, normalization or bundle.scoring.normalization)
    finally:
        store.close()
    return scorer, encoder
