"""`--pool earlier|all`: the pool a calibration incident's best score is taken over, and what each pool's
threshold reaches on the test split, with the false-alarm rate against pool size.

The service searches everything it holds, so a new incident meets more incidents than the same incident met
in the time-ordered protocol (the ones opened before it), and the best of more scores is higher: on a growing
index the "earlier" pool under-states the false alarms to come. "all" takes each duplicate-free calibration
incident's best score among every other incident except those linked to it (its own later duplicates are
not false alarms)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import numpy as np

from training.calibrate import UNIT_INCIDENT, ThresholdRule, choose_threshold
from training.metrics import clopper_pearson_interval
from training.protocol import POOLS, Evaluation, IncidentOutcome
from training.summaries import top_scores

POOL_BUCKETS = 5


def false_alarms(outcomes: list[IncidentOutcome], threshold: float, pool: str,
                 method: str = "hybrid") -> dict[str, Any]:
    """Share of the duplicate-free incidents whose best score in `pool` is at or above `threshold`."""
    best = top_scores(outcomes, method, duplicate=False, pool=pool)
    best = best[np.isfinite(best)]
    hits = int((best >= threshold).sum())
    return {"value": hits / best.size if best.size else float("nan"), "count": hits, "of": int(best.size),
            "ci95": clopper_pearson_interval(hits, int(best.size))}


def by_pool_size(outcomes: list[IncidentOutcome], thresholds: dict[str, float], buckets: int = POOL_BUCKETS,
                 method: str = "hybrid") -> list[dict[str, Any]]:
    """Duplicate-free incidents bucketed by how many incidents they were compared with in the time-ordered
    protocol (equal-count buckets), each bucket's false-alarm rate at each pool's threshold; the last row is
    the same incidents searched among all others (what the service meets once the index holds everything)."""
    free = [o for o in outcomes if not o.has_duplicate and o.top[method]]
    if not free:
        return []
    free.sort(key=lambda o: o.pool)
    rows = []
    for part in np.array_split(np.arange(len(free)), min(buckets, len(free))):
        group = [free[i] for i in part]
        rows.append({"compared_with": [group[0].pool, group[-1].pool], "incidents": len(group),
                     **{f"false_alarm_at_{p}_threshold": false_alarms(group, t, "earlier", method)
                        for p, t in thresholds.items()}})
    sizes = [o.pool_all for o in free]
    rows.append({"compared_with": [min(sizes), max(sizes)], "incidents": len(free), "pool": "all",
                 **{f"false_alarm_at_{p}_threshold": false_alarms(free, t, "all", method)
                    for p, t in thresholds.items()}})
    return rows


def compare_pools(evaluation: Evaluation, rule: ThresholdRule, split: str = "test") -> dict[str, Any]:
    """Both pools' thresholds for the rule (per incident), side by side on `split`: the false-alarm rate when
    the split's incidents are searched among the earlier ones (the protocol) and among all others (the
    serving pool), and against pool size."""
    if rule.unit != UNIT_INCIDENT:
        return {"chosen": rule.pool, "note": "pools apply to the per-incident unit only"}
    outcomes = evaluation.incident_split(split)
    rows, thresholds = [], {}
    for pool in POOLS:
        chosen = choose_threshold(evaluation, replace(rule, pool=pool))
        thresholds[pool] = chosen.value
        rows.append({"pool": pool, "threshold": chosen.value, "calibration": asdict(chosen),
                     split: {f"false_alarm_rate_{p}": false_alarms(outcomes, chosen.value, p) for p in POOLS}})
    return {"chosen": rule.pool, "target": rule.target, "confidence": rule.confidence,
            "calibration_splits": list(rule.splits), "split": split, "rows": rows,
            "by_pool_size": {"calibration": by_pool_size(evaluation.incident_split(*rule.splits), thresholds),
                             split: by_pool_size(outcomes, thresholds)}}


def _rate(entry: dict[str, Any]) -> str:
    lo, hi = entry["ci95"]
    return f"{entry['value']:.1%} ({entry['count']}/{entry['of']}) [{lo:.1%}, {hi:.1%}]"


def pools_markdown(report: dict[str, Any]) -> list[str]:
    """The report's pool comparison and phase times as Markdown lines (empty when the report has neither)."""
    lines: list[str] = []
    pools = report.get("pools") or {}
    if pools.get("rows"):
        split = pools["split"]
        lines += [f"## Calibration pool: earlier vs all (chosen: {pools['chosen']}; target {pools['target']}, "
                  f"confidence {pools['confidence']}, calibrated on {' + '.join(pools['calibration_splits'])})", "",
                  f"| pool | threshold | {split}: false alarms, searched among earlier incidents | "
                  f"{split}: false alarms, searched among all others |", "|---|---|---|---|"]
        for row in pools["rows"]:
            reached = row[split]
            lines.append(f"| {row['pool']} | {row['threshold']:.4f} | {_rate(reached['false_alarm_rate_earlier'])} "
                         f"| {_rate(reached['false_alarm_rate_all'])} |")
        for where, rows in pools["by_pool_size"].items():
            if not rows:
                continue
            lines += ["", f"False-alarm rate against pool size ({where}: duplicate-free incidents bucketed by how "
                          "many incidents they were compared with)", "",
                      "| compared with | incidents | at the earlier pool's threshold | at the all pool's threshold |",
                      "|---|---|---|---|"]
            for row in rows:
                lo, hi = row["compared_with"]
                label = f"{lo}-{hi}" + (" (all others)" if row.get("pool") == "all" else "")
                lines.append(f"| {label} | {row['incidents']} | {_rate(row['false_alarm_at_earlier_threshold'])} | "
                             f"{_rate(row['false_alarm_at_all_threshold'])} |")
        lines.append("")
    timings = report.get("timings")
    if timings:
        lines += [f"## Phase times ({timings['incidents']} incidents, {timings['texts_encoded']} texts encoded)", "",
                  "| phase | seconds |", "|---|---|"]
        lines += [f"| {name} | {seconds:.1f} |" for name, seconds in timings["phases_s"].items()]
        lines += [f"| total | {timings['total_s']:.1f} |", ""]
    return lines
