"""Summaries of an evaluation: per-incident rates (false alarms, hits, precision of the flag) and the ranking
and pair metrics, with their intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from training.metrics import (
    at_threshold,
    bootstrap_ci,
    clopper_pearson_interval,
    pr_auc,
    roc_auc,
    spearman,
)
from training.protocol import INCIDENT_K, METHODS, RETRIEVAL_KEYS, IncidentOutcome, QueryResult


def top_scores(outcomes: Sequence[IncidentOutcome], method: str, duplicate: bool | None = None,
               pool: str = "earlier") -> np.ndarray:
    """Each incident's best score (-inf when it had no candidate), optionally only those with/without a
    duplicate. An incident is flagged at threshold t, for any k, exactly when this score is >= t.
    `pool`: "earlier" (among the incidents opened before it, the protocol) or "all" (among every other
    incident except those linked to it: the pool a new incident meets once the index holds everything)."""
    if pool == "all":
        return np.array([o.best_all.get(method, -np.inf) for o in outcomes
                         if duplicate is None or o.has_duplicate == duplicate])
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


