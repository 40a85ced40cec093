"""End to end over loopback: a real `incident-sim serve` on an index of `--sizes` incidents, closed loop at 1, 4,
8 and 16 requests in flight, then open loop at fixed rates; p50/p95/p99, achieved requests/s, errors, and the
per-stage breakdown read from the service's own /metrics (differences of the stage histograms' sums and counts
over each run).

    python -m benchmarks.e2e [--bundle BUNDLE_DIR] [--sizes 10000] [--requests 300] [--rates 0.5,0.8,1.0]

Open-loop rates are fractions of the best closed-loop throughput measured just before, so they mean the same
on a faster machine; each open-loop run sends `--requests` requests (at most `--max-seconds`). The service runs
with its defaults except the query-embedding cache (off: the same queries are sent at every level) and the
background compaction (off: nothing is pushed). Corpus: benchmarks/corpus.py. Writes
benchmarks/results/e2e.json|md."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.concurrency import serve
from benchmarks.corpus import IndexCache, add_corpus_arguments, bundle_or_minilm, corpus_cache
from benchmarks.latency import open_loop, run
from benchmarks.machine import cpu_facts, suite_header, write_suite
from service.metrics import STAGES

STAGE_METRIC = "incident_sim_stage_duration_seconds"


def stage_totals(url: str) -> dict[str, tuple[float, float]]:
    """{stage: (sum of seconds, count)} from the service's /metrics."""
    return parse_stage_totals(httpx.get(f"{url}/metrics", timeout=10).text)


def parse_stage_totals(text: str) -> dict[str, tuple[float, float]]:
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != STAGE_METRIC:
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage", "")
            if sample.name.endswith("_sum"):
                out.setdefault(stage, [0.0, 0.0])[0] = sample.value
            elif sample.name.endswith("_count"):
                out.setdefault(stage, [0.0, 0.0])[1] = sample.value
    return {k: (v[0], v[1]) for k, v in out.items()}


def stage_means(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict[str, float]:
    means = {}
    for stage, (total, count) in after.items():
        t0, c0 = before.get(stage, (0.0, 0.0))
        if count > c0:
            means[stage] = round((total - t0) / (count - c0) * 1000, 2)
    return means


def measure_size(cache: IndexCache, size: int, levels: list[int], rates: list[float], requests: int,
                 max_seconds: float, root: Path) -> dict[str, Any]:
    built = cache.get(size)
    proc, url = serve(built.data_dir, {}, root / f"serve-{size}.log")
    runs = []
    try:
        run(url, 20, 1, 5, 120, 0)  # warm-up outside every measured run (the first query builds the df table)
        for c in levels:
            before = stage_totals(url)
            result = run(url, requests, c, 5, max_seconds, 10)
            result["stages_mean_ms"] = stage_means(before, stage_totals(url))
            result["mode"] = "closed loop"
            runs.append(result)
            print(f"{size}: closed c={c:2d}: {result['requests_per_s']:6.1f} req/s, p50 {result['p50_ms']} ms, "
                  f"p99 {result['p99_ms']} ms, statuses {result['statuses']}", flush=True)
        best = max(r["requests_per_s"] for r in runs)
        for fraction in rates:
            rate = round(best * fraction, 2)
            before = stage_totals(url)
            result = open_loop(url, rate, min(requests, max(20, int(rate * max_seconds))), 5)
            result["stages_mean_ms"] = stage_means(before, stage_totals(url))
            result["fraction_of_best"] = fraction
            runs.append(result)
            print(f"{size}: open {rate:6.1f}/s: achieved {result['achieved_per_s']}/s, p50 {result['p50_ms']} ms, "
                  f"p99 {result['p99_ms']} ms, statuses {result['statuses']}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"incidents": size, "best_closed_loop_per_s": best, "runs": runs}


def markdown(figures: dict[str, Any], command: str) -> list[str]:
    lines = [*suite_header("End to end over loopback: closed and open loop", command, figures["machine"]),
             f"Bundle {figures['bundle']}; one `incident-sim serve` (defaults, query cache off); corpus: "
             f"{figures['corpus']}. Stage columns: mean ms per request from the service's "
             "`incident_sim_stage_duration_seconds` over that run. Open loop: latency counted from when each "
             "request was due.", "",
             "| incidents | mode | in flight / offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms | statuses "
             "| " + " | ".join(STAGES) + " |",
             "|---" * (8 + len(STAGES)) + "|"]
    for row in figures["rows"]:
        for r in row["runs"]:
            s = r["stages_mean_ms"]
            load = r["concurrency"] if r["mode"] == "closed loop" else r["offered_per_s"]
            achieved = r.get("requests_per_s", r.get("achieved_per_s"))
            lines.append(f"| {row['incidents']} | {r['mode']} | {load} | {achieved} | {r['p50_ms']} | "
                         f"{r['p95_ms']} | {r['p99_ms']} | {r['statuses']} | "
                         + " | ".join(str(s.get(stage, "")) for stage in STAGES) + " |")
    return lines


def run_suite(cache: IndexCache, sizes: list[int], levels: list[int], rates: list[float], requests: int,
              max_seconds: float, out: Path, command: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="e2e-logs-") as tmp:
        rows = [measure_size(cache, size, levels, rates, requests, max_seconds, Path(tmp)) for size in sizes]
    figures = {"machine": cpu_facts(), "bundle": cache.bundle.model_version, "corpus": cache.corpus.describe(),
               "rows": rows}
    write_suite(out, "e2e", figures, markdown(figures, command))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_arguments(parser, "10000")
    parser.add_argument("--requests", type=int, default=300, help="per level (bounded)")
    parser.add_argument("--max-seconds", type=float, default=60, help="per level")
    parser.add_argument("--concurrency", default="1,4,8,16")
    parser.add_argument("--rates", default="0.5,0.8,1.0", help="open-loop rates, fractions of the best closed loop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="e2e-bench-") as tmp:
        bundle = bundle_or_minilm(args.bundle, Path(tmp))
        sizes = [int(s) for s in args.sizes.split(",")]
        run_suite(corpus_cache(bundle, Path(tmp), sizes, args.real, 50, args.copies), sizes,
                  [int(c) for c in args.concurrency.split(",")], [float(r) for r in args.rates.split(",")],
                  args.requests, args.max_seconds, args.out, "python -m benchmarks.e2e " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
