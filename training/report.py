"""Evaluation reports: JSON with stable keys, Markdown for people, PNG plots."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training.calibrate import UNIT_INCIDENT, UNITS
from training.evaluate import (
    INCIDENT_K,
    METHODS,
    RETRIEVAL_KEYS,
    Evaluation,
    QueryResult,
    incident_rates,
    pair_arrays,
    top_scores,
)
from training.metrics import bootstrap_ci, clopper_pearson_upper
from training.pools import pools_markdown

logger = logging.getLogger(__name__)


def mean_with_ci(diffs: np.ndarray, n_boot: int = 1000) -> dict[str, Any]:
    """Mean of per-query differences with a bootstrap interval over queries (a paired comparison)."""
    if diffs.size == 0:
        return {"value": float("nan"), "ci95": (float("nan"), float("nan"))}
    return {"value": float(diffs.mean()),
            "ci95": bootstrap_ci(len(diffs), lambda idx: float(diffs[idx].mean()), n_boot)}


def paired_difference(queries: list[QueryResult], metric: str, a: str, b: str, n_boot: int = 1000) -> dict[str, Any]:
    """Mean of metric(a) - metric(b) over queries, with a paired bootstrap interval."""
    return mean_with_ci(np.array([q.metrics[a][metric] - q.metrics[b][metric] for q in queries]), n_boot)


def verdict(diff: dict[str, Any], metric: str, split: str) -> str:
    lo, hi = diff["ci95"]
    head = f"hybrid - dense {metric} on the {split} split: {diff['value']:+.3f} (95% CI {lo:+.3f} .. {hi:+.3f})"
    if lo > 0:
        return head + ": the hybrid beats dense-only."
    if hi < 0:
        return head + ": the hybrid is WORSE than dense-only."
    return head + ": no demonstrated difference (the interval contains 0)."


def _fmt(entry: Any) -> str:
    if isinstance(entry, dict) and "value" in entry:
        lo, hi = entry["ci95"]
        return f"{entry['value']:.3f} [{lo:.3f}, {hi:.3f}]"
    return f"{entry:.3f}" if isinstance(entry, float) else str(entry)


def _ci(entry: dict[str, Any]) -> str:
    lo, hi = entry["ci95"]
    return f"{entry['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def _count(entry: dict[str, Any]) -> str:
    return f"{_ci(entry)} ({entry['count']}/{entry['of']})"


def threshold_summary(t: dict[str, Any]) -> str:
    """One line: the threshold, what it targets, and what it reaches on the test split."""
    if t.get("unit"):
        how = f", {t['confidence']:.0%} confidence" if t.get("confidence") else ", point estimate"
        head = f"threshold {t['value']:.4f} for {UNITS[t['unit']].split(' (')[0]} <= {t['target']}{how}"
    else:
        head = f"threshold {t['value']:.4f} ({t['source']}; no target)"
    test = t.get("test", {})
    parts = []
    if "false_alarm_rate" in test:
        parts.append(f"false alarms per incident {_count(test['false_alarm_rate'])}")
    if "hit_rate" in test:
        parts.append(f"hit rate {_count(test['hit_rate'])}")
    if "flag_precision" in test:
        parts.append(f"flag precision {_count(test['flag_precision'])}")
    if "fpr" in test:
        lo, hi = test.get("fpr_ci95", (float("nan"), float("nan")))
        parts.append(f"pair FPR {test['fpr']:.3f} [{lo:.3f}, {hi:.3f}] recall {test['recall']:.3f}")
    return head + ("; test: " + ", ".join(parts) if parts else "")


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Evaluation: {report['corpus']} with {report['bundle']['model_version']}", ""]
    lines += [f"- labels: {report['label_kind']}"] + [f"- {n}" for n in report["notes"]]
    p = report["protocol"]
    lines += [f"- protocol: {p['description']}", f"- incidents per split: {p['splits']}",
              f"- asked as new incidents (with at least one earlier incident): {p.get('incident_queries')}; "
              f"with an earlier duplicate (ranking and pair metrics): {p['queries']}",
              f"- BM25 normalization: **{report['bm25_normalization']['chosen']}** "
              f"({report['bm25_normalization']['why']})"]
    dense_text = report.get("dense_text") or {}
    if dense_text:
        lines.append(f"- dense text: **{dense_text['mode']}** ({dense_text['why']})")
    lines.append("")
    if dense_text.get("comparison"):
        lines += ["## Dense text modes (chosen on validation)", "",
                  "| mode | validation hybrid MRR | minus current, paired 95% CI | test hybrid MRR (not used) |",
                  "|---|---|---|---|"]
        for mode, row in dense_text["comparison"].items():
            diff = row.get("validation_mrr_minus_current")
            diff_text = f"{diff['value']:+.3f} [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}]" if diff else "-"
            val = row.get("validation_hybrid_mrr")
            test = row.get("test_hybrid_mrr (reported, not used to choose)")
            lines.append(f"| {mode} | {'-' if val is None else f'{val:.3f}'} | {diff_text} | "
                         f"{'-' if test is None else f'{test:.3f}'} |")
        lines.append("")
    if report.get("units"):
        lines += ["## What each unit measures", ""] + [f"- {u}" for u in report["units"]] + [""]
    if report.get("threshold"):
        t = report["threshold"]
        lines += ["## Threshold", "", f"- {threshold_summary(t)}"]
        if t.get("unit"):
            lines.append(f"- chosen on: {t.get('calibrated_on')}")
        cal = t.get("calibration")
        if cal:
            lines.append(f"- on the calibration data: {cal['false_alarms']} of {cal['trials']} units at or above it "
                         f"(rate {cal['rate']:.3f}, one-sided {cal['confidence']:.0%} upper bound "
                         f"{cal['upper_bound']:.3f}{'' if cal['bound_met'] else '; the bound could NOT be met'})")
        val = t.get("validation", {})
        if "false_alarm_rate" in val:
            lines.append(f"- validation: false alarms per incident {_count(val['false_alarm_rate'])}, hit rate "
                         f"{_count(val['hit_rate'])}, pair FPR {val['fpr']:.3f}, pair recall {val['recall']:.3f}")
        lines.append("")
    if report.get("rules_compared"):
        k = report["protocol"]["k"][0]
        lines += ["## Threshold rules side by side (chosen on their calibration splits, reached on the test split)",
                  "", f"| rule | threshold | false alarms per incident | hit rate top{k} | hit rate top1 | "
                  f"flag precision top{k} | pair FPR | pair recall |", "|---|---|---|---|---|---|---|---|"]
        for row in report["rules_compared"]:
            test = row["test"]
            top, top1 = test.get(f"top{k}", {}), test.get("top1", {})
            pairs = test.get("pairs", {})
            pair_fpr = (f"{pairs['fpr']:.3f} [{pairs['fpr_ci95'][0]:.3f}, {pairs['fpr_ci95'][1]:.3f}]"
                        if pairs else "-")
            mark = " **(chosen)**" if row.get("chosen") else ""
            lines.append(f"| {row['rule']}{mark} | {row['threshold']:.4f} | "
                         f"{_count(top['false_alarm_rate']) if top else '-'} | "
                         f"{_count(top['hit_rate']) if top else '-'} | {_count(top1['hit_rate']) if top1 else '-'} | "
                         f"{_count(top['flag_precision']) if top else '-'} | {pair_fpr} | "
                         f"{pairs.get('recall', float('nan')):.3f} |")
        lines += ["", "Rates per incident: 95% Clopper-Pearson intervals; flag precision and pair FPR: 95% bootstrap "
                      "over incidents/queries.", ""]
    lines += pools_markdown(report)
    lines += ["## Verdict", "", report["verdict"], ""]
    for split, summary in report.get("per_incident", {}).items():
        if not summary.get("incidents") or "hybrid" not in summary:
            continue
        lines += [f"## {split} split, per incident ({summary['incidents']} incidents asked: "
                  f"{summary['without_duplicate']} without an earlier duplicate, {summary['with_duplicate']} with "
                  f"one; threshold {summary['threshold']:.4f})", "",
                  "| method | k | false alarms per incident | hit rate | flag precision |", "|---|---|---|---|---|"]
        for method in METHODS:
            for key, row in summary[method].items():
                lines.append(f"| {method} | {key.removeprefix('top')} | {_count(row['false_alarm_rate'])} | "
                             f"{_count(row['hit_rate'])} | {_count(row['flag_precision'])} |")
        lines += ["", "The same threshold is applied to each method's own score (dense: cosine; bm25: normalised); "
                      "it was chosen for the hybrid score.", ""]
    for split, summary in report["splits"].items():
        if not summary.get("queries"):
            continue
        lines += [f"## {split} split, ranking and pairs ({summary['queries']} queries with an earlier duplicate; "
                  f"pairs {summary['pairs']['positive']} positive : "
                  f"{summary['pairs']['negative']} negative = {summary['pairs']['ratio']})", "",
                  "| metric | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
        for key in (*RETRIEVAL_KEYS, "roc_auc", "pr_auc", "spearman"):
            lines.append(f"| {key} | " + " | ".join(_fmt(summary[m][key]) for m in METHODS) + " |")
        if "at_threshold" in summary["hybrid"]:
            at = summary["hybrid"]["at_threshold"]
            lines += ["", f"Hybrid at the threshold (pairs): precision {at['precision']:.3f}, recall "
                          f"{at['recall']:.3f}, F1 {at['f1']:.3f}, FPR {at['fpr']:.3f} (95% CI {at['fpr_ci95'][0]:.3f} "
                          f".. {at['fpr_ci95'][1]:.3f})"]
        lines.append("")
    lines.append("Intervals: 95% bootstrap over queries (a query's pairs resampled with it), except the per-incident "
                 "rates (exact binomial).")
    return "\n".join(lines) + "\n"


def plots(evaluation: Evaluation, split: str, threshold: float | None, out_prefix: Path, title: str,
          threshold_info: dict[str, Any] | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = evaluation.split(split)
    written = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, method in zip(axes, METHODS, strict=True):
        scores, labels, _ = pair_arrays(queries, method)
        bins = np.linspace(min(scores.min(), 0), max(scores.max(), 1), 40)
        ax.hist(scores[~labels], bins=bins, alpha=0.6, density=True, label=f"not linked ({(~labels).sum()})")
        ax.hist(scores[labels], bins=bins, alpha=0.6, density=True, label=f"linked ({labels.sum()})")
        if method == "hybrid" and threshold is not None:
            ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
        ax.set_title(f"{method} score")
        ax.legend()
    fig.suptitle(f"{title}: score distributions of linked vs not-linked pairs")
    written.append(_save(fig, out_prefix.with_name(out_prefix.name + "-distributions.png")))

    fig, ax = plt.subplots(figsize=(6, 5))
    for method in METHODS:
        scores, labels, _ = pair_arrays(queries, method)
        order = np.argsort(-scores, kind="mergesort")
        tp = np.cumsum(labels[order])
        precision = tp / np.arange(1, len(order) + 1)
        recall = tp / max(labels.sum(), 1)
        ax.plot(recall, precision, label=method)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"{title}: precision-recall (pairs)")
    ax.legend()
    written.append(_save(fig, out_prefix.with_name(out_prefix.name + "-pr.png")))

    fig, ax = plt.subplots(figsize=(6, 5))
    scores, labels, _ = pair_arrays(queries, "hybrid")
    grid = np.linspace(scores.min(), scores.max(), 200)
    ax.plot(grid, [(scores[~labels] >= t).mean() for t in grid], label="false-positive rate (pairs)")
    ax.plot(grid, [(scores[labels] >= t).mean() for t in grid], label="recall (pairs)")
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"chosen threshold {threshold:.3f}")
    ax.set_xlabel("hybrid threshold")
    ax.set_title(f"{title}: FPR and recall against the threshold")
    ax.legend()
    written.append(_save(fig, out_prefix.with_name(out_prefix.name + "-threshold.png")))
    written.append(incident_plot(evaluation, split, threshold, threshold_info, out_prefix, title))
    return written


def incident_plot(evaluation: Evaluation, split: str, threshold: float | None, threshold_info: dict[str, Any] | None,
                  out_prefix: Path, title: str) -> Path:
    """False-alarm rate and hit rate per incident against the threshold on `split`; with a calibrated
    threshold, also the calibration data's false-alarm rate, its one-sided upper bound and the target."""
    import matplotlib.pyplot as plt

    outcomes = evaluation.incident_split(split)
    fig, ax = plt.subplots(figsize=(7, 5))
    without = top_scores(outcomes, "hybrid", duplicate=False)
    everything = np.concatenate([without, top_scores(outcomes, "hybrid", duplicate=True)])
    everything = everything[np.isfinite(everything)]
    grid = np.linspace(everything.min(), everything.max(), 200) if everything.size else np.linspace(0, 1, 200)
    k = INCIDENT_K[0]
    rates = [incident_rates(outcomes, "hybrid", t, k) for t in grid]
    ax.plot(grid, [r["false_alarms"] / max(r["without_duplicate"], 1) for r in rates],
            label=f"false-alarm rate per incident, {split} ({int(rates[0]['without_duplicate'])} incidents)")
    ax.plot(grid, [r["hits"] / max(r["with_duplicate"], 1) for r in rates],
            label=f"hit rate top{k}, {split} ({int(rates[0]['with_duplicate'])} incidents)")
    info = threshold_info or {}
    if info.get("unit") == UNIT_INCIDENT and info.get("calibration"):
        cal = info["calibration"]
        calibration_splits = tuple(cal.get("splits") or ("validation",))
        negatives = top_scores(evaluation.incident_split(*calibration_splits), "hybrid", duplicate=False)
        negatives = negatives[np.isfinite(negatives)]
        if negatives.size:
            counts = np.array([(negatives >= t).sum() for t in grid])
            ax.plot(grid, counts / negatives.size, color="grey", linewidth=1,
                    label=f"false-alarm rate, calibration ({' + '.join(calibration_splits)})")
            ax.plot(grid, clopper_pearson_upper(counts, negatives.size, cal["confidence"]), color="grey",
                    linestyle=":", label=f"its one-sided {cal['confidence']:.0%} upper bound")
        ax.axhline(info["target"], color="red", linewidth=0.8, label=f"target {info['target']}")
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"chosen threshold {threshold:.3f}")
    ax.set_xlabel("hybrid threshold")
    ax.set_ylim(0, 1)
    ax.set_title(f"{title}: per incident, against the threshold")
    ax.legend(fontsize=7)
    return _save(fig, out_prefix.with_name(out_prefix.name + "-incidents.png"))


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def write_report(report: dict[str, Any], out_dir: Path, stem: str,
                 render: Callable[[dict[str, Any]], str] | None = None) -> list[Path]:
    """`stem`.json (stable keys) and `stem`.md (`render`, default: the evaluation report's markdown)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=_json_default) + "\n")
    md_path = out_dir / f"{stem}.md"
    md_path.write_text((render or markdown)(report))
    return [json_path, md_path]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")
