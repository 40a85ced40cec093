"""Training pairs for fine-tuning, mined from the *train* split only.

* Positives: explicit links between two train-split incidents (the later one is the anchor, as it
  would be the query at serving time).
* Hard negatives: for each anchor, the top-ranked non-links by BM25 and by the current encoder
  (the served bundle), among the other train-split incidents.
* False-negative guard: a candidate is never a negative when it is linked to the anchor through any
  chain of links (a shared problem), or when the current encoder scores it at or above
  `relative_ceiling` x the positive's score (an unlabelled duplicate is more likely than a negative
  there; NV-Retriever's "TopK-PercPos" rule).
* Feedback (`train --feedback`, training/data/feedback.py): confirmed duplicates between two train-split
  incidents join the links as positives; an agent's `not_similar` verdict on a train-split pair makes the
  suggested incident a hard negative of the other, first in its list and past the relative ceiling (an
  agent looked: it is a labelled negative, not a likely unlabelled duplicate), unless links join the two.
* Hardness report: the current model's ROC-AUC separating positive pairs from the mined negative
  pairs (dense, BM25 and hybrid) next to the same with random negatives. Pairs the baseline already
  separates (notebook era: ROC-AUC 0.93) teach nothing."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexing.errors import InputDataError
from indexing.scoring import DEFAULT_BM25_WEIGHT, DEFAULT_DENSE_WEIGHT, DEFAULT_NORMALIZATION
from training.data.feedback import TrainingFeedback
from training.data.labels import LabelledCorpus
from training.evaluate import scorer_for_incidents, time_boundaries
from training.metrics import roc_auc

logger = logging.getLogger(__name__)

Encode = Callable[[list[str]], np.ndarray]  # texts -> L2-normalised vectors


@dataclass(frozen=True)
class TrainingPair:
    anchor: str  # incident numbers
    positive: str
    negatives: tuple[str, ...]


@dataclass
class PairSet:
    pairs: list[TrainingPair]
    texts: dict[str, str]  # incident number -> text, for every number used in a pair
    groups: dict[str, int]  # incident number -> link component (for in-batch false-negative avoidance)
    stats: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        """SHA-256 of the pairs and their texts: identifies the training data in the run's metadata."""
        h = hashlib.sha256()
        for p in self.pairs:
            h.update(json.dumps([p.anchor, p.positive, list(p.negatives)]).encode())
        for number in sorted(self.texts):
            h.update(number.encode() + b"\0" + self.texts[number].encode() + b"\0")
        return h.hexdigest()


def link_components(numbers: Sequence[str], links: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Connected components of the link graph (union-find): incidents in one component share a problem."""
    parent = {n: n for n in numbers}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
    roots: dict[str, int] = {}
    return {n: roots.setdefault(find(n), len(roots)) for n in numbers}


def mine_pairs(corpus: LabelledCorpus, encode: Encode, analyzer: str, k1: float = 1.2, b: float = 0.75,
               normalization: str = DEFAULT_NORMALIZATION, dense_weight: float = DEFAULT_DENSE_WEIGHT,
               bm25_weight: float = DEFAULT_BM25_WEIGHT,
               negatives_per_source: int = 1, relative_ceiling: float = 0.95, min_positives: int = 20,
               seed: int = 0, feedback: TrainingFeedback | None = None) -> PairSet:
    """Mine (anchor, positive, hard negatives) from the train split. Raises InputDataError when the
    train split holds fewer than `min_positives` links: too little to learn from without over-fitting."""
    train_end, _ = time_boundaries(corpus)
    train = corpus.incidents[:train_end]
    numbers = [i.number for i in train]
    row_of = {n: r for r, n in enumerate(numbers)}
    train_links = sorted((x, y) for x, y in corpus.links if x in row_of and y in row_of)
    feedback_stats = {"duplicates_used": 0, "duplicates_outside_train_split": 0, "not_similar_used": 0}
    if feedback is not None:
        known = {tuple(sorted(link)) for link in train_links}
        for incident, suggested in feedback.duplicates:  # (not a, b: `b` is the BM25 parameter)
            pair = tuple(sorted((incident, suggested)))
            if incident not in row_of or suggested not in row_of:
                feedback_stats["duplicates_outside_train_split"] += 1
            elif pair not in known:
                known.add(pair)
                feedback_stats["duplicates_used"] += 1
        train_links = sorted(known)  # type: ignore[arg-type]
    if len(train_links) < min_positives:
        raise InputDataError(
            f"{corpus.name}: only {len(train_links)} links between incidents of the train split (the first "
            f"{train_end} incidents by time); fine-tuning needs at least {min_positives}. Add labelled links "
            "(duplicate_of, problem_id, parent_incident) or keep the baseline.")
    groups = link_components(numbers, train_links)
    texts = [i.text() for i in train]
    logger.info("mining pairs: encoding %d train-split incidents with the current encoder", len(texts))
    dense = np.asarray(encode(texts), dtype=np.float32)
    scorer = scorer_for_incidents(train, dense, analyzer, k1, b, normalization, dense_weight, bm25_weight)
    rng = np.random.default_rng(seed)
    pairs: list[TrainingPair] = []
    guard = {"same_problem": 0, "above_relative_ceiling": 0}
    hard_scores: dict[str, list[float]] = {"dense": [], "bm25": [], "hybrid": []}
    random_scores: dict[str, list[float]] = {"dense": [], "bm25": [], "hybrid": []}
    pos_scores: dict[str, list[float]] = {"dense": [], "bm25": [], "hybrid": []}
    score_cache: dict[int, dict[str, np.ndarray]] = {}
    for a_num, b_num in train_links:
        # rows are in time order, so the later incident (the one a user would query with) is the anchor
        anchor, positive = max(row_of[a_num], row_of[b_num]), min(row_of[a_num], row_of[b_num])
        if anchor not in score_cache:
            score_cache[anchor] = scorer.score(dense[anchor], texts[anchor])
        scores = score_cache[anchor]
        ceiling = relative_ceiling * scores["dense"][positive]
        chosen: list[int] = []
        for said in sorted(feedback.negatives_of(numbers[anchor]) if feedback is not None else ()):
            if said in row_of and groups[said] != groups[numbers[anchor]] and row_of[said] not in chosen:
                chosen.append(row_of[said])
        said_not = len(chosen)
        for source in ("bm25", "dense"):
            taken = 0
            for cand in np.argsort(-scores[source], kind="stable"):
                if taken == negatives_per_source:
                    break
                if cand == anchor or cand in chosen:
                    continue
                if groups[numbers[cand]] == groups[numbers[anchor]]:
                    guard["same_problem"] += 1
                    continue
                if scores["dense"][cand] >= ceiling:
                    guard["above_relative_ceiling"] += 1
                    continue
                chosen.append(int(cand))
                taken += 1
        others = [r for r in range(len(train)) if groups[numbers[r]] != groups[numbers[anchor]]]
        if others:
            rand = int(rng.choice(others))
            for method in random_scores:
                random_scores[method].append(float(scores[method][rand]))
        for method in pos_scores:
            pos_scores[method].append(float(scores[method][positive]))
            hard_scores[method].extend(float(scores[method][c]) for c in chosen)
        if len(chosen) < 2 * negatives_per_source:
            continue  # too small a pool to mine from; such a pair would be padded with easy negatives
        # feedback negatives first: they take the place of mined ones (training uses a fixed width per pair)
        feedback_stats["not_similar_used"] += min(said_not, 2 * negatives_per_source)
        pairs.append(TrainingPair(numbers[anchor], numbers[positive],
                                  tuple(numbers[c] for c in chosen[:2 * negatives_per_source])))

    def auc(negatives: dict[str, list[float]]) -> dict[str, float]:
        out = {}
        for method in pos_scores:
            s = np.array(pos_scores[method] + negatives[method])
            labels = np.array([True] * len(pos_scores[method]) + [False] * len(negatives[method]))
            out[method] = roc_auc(s, labels) if len(negatives[method]) else float("nan")
        return out

    used = {n for p in pairs for n in (p.anchor, p.positive, *p.negatives)}
    stats = {
        "train_split_incidents": len(train),
        "train_split_links": len(train_links),
        "pairs": len(pairs),
        "negatives_per_pair": 2 * negatives_per_source,
        "negative_sources": ["bm25", "dense (current encoder)"],
        "false_negative_guard": {"relative_ceiling": relative_ceiling, "skipped": guard},
        "feedback": {**(feedback.stats if feedback is not None else {}), **feedback_stats} if feedback else None,
        "hardness_baseline_roc_auc": {"mined_negatives": auc(hard_scores), "random_negatives": auc(random_scores)},
    }
    logger.info("mined %d pairs from %d train-split links; baseline ROC-AUC on them (hybrid): mined negatives "
                "%.3f, random negatives %.3f", len(pairs), len(train_links),
                stats["hardness_baseline_roc_auc"]["mined_negatives"]["hybrid"],
                stats["hardness_baseline_roc_auc"]["random_negatives"]["hybrid"])
    if not pairs:
        raise InputDataError(f"{corpus.name}: no training pair could be mined from the train split")
    return PairSet(pairs, {n: texts[row_of[n]] for n in used}, {n: groups[n] for n in used}, stats)
