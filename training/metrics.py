"""Retrieval and pair metrics, and bootstrap confidence intervals (resampling queries)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def retrieval_metrics(ranked_relevance: Sequence[bool], n_relevant: int) -> dict[str, float]:
    """Metrics of one query from the relevance of its ranked candidates (all of them, best first)."""
    rel = np.asarray(ranked_relevance, dtype=bool)
    hits = np.flatnonzero(rel)
    out = {f"recall@{k}": float(rel[:k].sum() / n_relevant) for k in (1, 5, 10)}
    out["mrr"] = float(1.0 / (hits[0] + 1)) if hits.size else 0.0
    out["map"] = float(np.mean([(i + 1) / (rank + 1) for i, rank in enumerate(hits)])) if hits.size else 0.0
    dcg = sum(1.0 / math.log2(rank + 2) for rank in hits if rank < 10)
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(n_relevant, 10)))
    out["ndcg@10"] = float(dcg / idcg) if idcg else 0.0
    return out


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing the mean rank (vectorised)."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    new_group = np.r_[True, sorted_vals[1:] != sorted_vals[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(values)] - 1
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = ((starts + ends) / 2 + 1)[np.cumsum(new_group) - 1]
    return ranks


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = labels.sum(), (~labels).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    r = _ranks(scores)
    return float((r[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def pr_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision over the pairs ranked by score."""
    if labels.sum() == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    lab = labels[order]
    precision_at = np.cumsum(lab) / np.arange(1, len(lab) + 1)
    return float(precision_at[lab].mean())


def spearman(scores: np.ndarray, labels: np.ndarray) -> float:
    a, b = _ranks(scores), _ranks(labels.astype(float))
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def at_threshold(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = scores >= threshold
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    tn = int((~predicted & ~labels).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "fpr": fp / (fp + tn) if fp + tn else float("nan"),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def bootstrap_ci(groups: int, statistic: Callable[[np.ndarray], float], n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of `statistic(indices)` over `groups` resampled with replacement."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        v = statistic(rng.integers(0, groups, groups))
        if not math.isnan(v):
            values.append(v)
    if not values:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(values, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return (float(lo), float(hi))


def clopper_pearson_upper(successes: int | np.ndarray, trials: int, confidence: float) -> float | np.ndarray:
    """One-sided exact binomial (Clopper-Pearson) upper bound of a rate at `confidence`: the largest p for
    which seeing at most `successes` in `trials` still has probability >= 1 - confidence. With
    `confidence` 0 it is the point estimate successes / trials."""
    from scipy.stats import beta

    if trials <= 0:
        raise ValueError("a rate bound needs at least one trial")
    if not (confidence == 0.0 or 0.5 <= confidence < 1.0):
        raise ValueError("confidence must be 0 (the point estimate) or in [0.5, 1): below 0.5 the bound would lie "
                         "under the point estimate")
    x = np.asarray(successes, dtype=float)
    if confidence == 0.0:
        out = x / trials
    else:
        with np.errstate(invalid="ignore"):
            bound = beta.ppf(confidence, x + 1, np.maximum(trials - x, 1e-12))
        out = np.where(x >= trials, 1.0, np.maximum(bound, x / trials))
    return float(out) if np.ndim(out) == 0 else out


def clopper_pearson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided exact binomial interval of a rate (each tail (1 - level) / 2); (nan, nan) without trials."""
    from scipy.stats import beta

    if trials <= 0:
        return (float("nan"), float("nan"))
    alpha = 1.0 - level
    lo = 0.0 if successes <= 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    hi = 1.0 if successes >= trials else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return (lo, hi)
