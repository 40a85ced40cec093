"""Evaluation reports: JSON with stable keys, Markdown for people, PNG plots."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluate import METHODS, RETRIEVAL_KEYS, QueryResult, pair_arrays
from training.metrics import bootstrap_ci

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


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Evaluation: {report['corpus']} with {report['bundle']['model_version']}", ""]
    lines += [f"- labels: {report['label_kind']}"] + [f"- {n}" for n in report["notes"]]
    p = report["protocol"]
    lines += [f"- protocol: {p['description']}", f"- incidents per split: {p['splits']}",
              f"- BM25 normalization: **{report['bm25_normalization']['chosen']}** "
              f"({report['bm25_normalization']['why']})", ""]
    if report.get("threshold"):
        t = report["threshold"]
        target = f"target FPR {t['target_fpr']}" if t.get("target_fpr") is not None else "no FPR target (uncalibrated)"
        test_fpr = (f"test: FPR {t['test']['fpr']:.3f} (95% CI {t['test']['fpr_ci95'][0]:.3f} .. "
                    f"{t['test']['fpr_ci95'][1]:.3f})")
        if t.get("target_fpr") is not None:
            test_fpr += f" next to the {t['target_fpr']} target"
        lines += ["## Threshold", "",
                  f"- threshold **{t['value']:.4f}** ({t['source']}), {target}",
                  f"- validation: FPR {t['validation']['fpr']:.3f}, recall {t['validation']['recall']:.3f}",
                  f"- {test_fpr}; recall {t['test']['recall']:.3f}", ""]
    lines += ["## Verdict", "", report["verdict"], ""]
    for split, summary in report["splits"].items():
        if not summary.get("queries"):
            continue
        lines += [f"## {split} split ({summary['queries']} queries; pairs {summary['pairs']['positive']} positive : "
                  f"{summary['pairs']['negative']} negative = {summary['pairs']['ratio']})", "",
                  "| metric | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
        for key in (*RETRIEVAL_KEYS, "roc_auc", "pr_auc", "spearman"):
            lines.append(f"| {key} | " + " | ".join(_fmt(summary[m][key]) for m in METHODS) + " |")
        if "at_threshold" in summary["hybrid"]:
            at = summary["hybrid"]["at_threshold"]
            lines += ["", f"Hybrid at the threshold: precision {at['precision']:.3f}, recall {at['recall']:.3f}, "
                          f"F1 {at['f1']:.3f}, FPR {at['fpr']:.3f} (95% CI {at['fpr_ci95'][0]:.3f} .. "
                          f"{at['fpr_ci95'][1]:.3f})"]
        lines.append("")
    lines.append("Intervals: 95% bootstrap over queries (a query's pairs resampled with it).")
    return "\n".join(lines) + "\n"


def plots(queries: list[QueryResult], threshold: float | None, out_prefix: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    ax.plot(grid, [(scores[~labels] >= t).mean() for t in grid], label="false-positive rate")
    ax.plot(grid, [(scores[labels] >= t).mean() for t in grid], label="recall")
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"chosen threshold {threshold:.3f}")
    ax.set_xlabel("hybrid threshold")
    ax.set_title(f"{title}: FPR and recall against the threshold")
    ax.legend()
    written.append(_save(fig, out_prefix.with_name(out_prefix.name + "-threshold.png")))
    return written


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
