"""The time-ordered protocol's records and splits (what an evaluation is made of), shared by the evaluation,
its summaries and the calibration. See training/evaluate.py for the protocol itself."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from indexing.errors import InputDataError
from indexing.search import DEFAULT_TOP_K
from training.data.labels import LabelledCorpus

METHODS = ("dense", "bm25", "hybrid")
SPLITS = ("train", "validation", "test")
RETRIEVAL_KEYS = ("recall@1", "recall@5", "recall@10", "mrr", "map", "ndcg@10")
TOP_KEPT = 10  # results kept per incident for the per-incident view (the service answers top_k <= 50, default 5)
INCIDENT_K = (DEFAULT_TOP_K, 1)  # the per-incident rates are reported for the service's default top_k and for 1
POOLS = ("earlier", "all")  # calibration pool: incidents opened before each one, or every other incident


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
    pool: int = 0  # incidents it was compared with (opened before it)
    best_all: dict[str, float] = field(default_factory=dict)  # best score among all others except its links
    pool_all: int = 0  # incidents in that pool


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


def counts(corpus: LabelledCorpus) -> dict[str, int]:
    boundaries = time_boundaries(corpus)
    c = Counter(split_of(p, boundaries) for p in range(len(corpus.incidents)))
    return {s: c.get(s, 0) for s in SPLITS}


