"""Send a bounded number of /similar requests over loopback to a running service and report
latency percentiles and throughput.

    python -m benchmarks.latency --url http://127.0.0.1:8000 --requests 500 --concurrency 1

Queries are unseen sample incidents (another seed than the indexed ones). Results are printed and
written to benchmarks/results/latency-<label>.json."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from training.data.sample import generate_incidents

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run(url: str, requests: int, concurrency: int, top_k: int, max_seconds: float, warmup: int) -> dict:
    queries = [{"short_description": r["short_description"], "description": r["description"], "top_k": top_k}
               for r in generate_incidents(max(requests, 50), seed=4242)]
    with httpx.Client(base_url=url, timeout=30) as client:
        ready = client.get("/readyz").json()
        for q in queries[:warmup]:
            client.post("/similar", json=q).raise_for_status()

    deadline = time.monotonic() + max_seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def worker(worker_id: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(worker_id, requests, concurrency):
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                r = client.post("/similar", json=queries[i % len(queries)])
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    wall = time.perf_counter() - t0
    ms = [x * 1000 for x in latencies]
    return {
        "when": datetime.now(UTC).isoformat(),
        "url": url,
        "model_version": ready.get("model_version"),
        "index_version": ready.get("index_version"),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "requests": len(ms),
        "concurrency": concurrency,
        "top_k": top_k,
        "statuses": statuses,
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "max_ms": round(max(ms), 2),
        "requests_per_s": round(len(ms) / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=500, help="total requests (bounded)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=300, help="stop early after this long")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--label", default="sample-5000")
    args = parser.parse_args()
    result = run(args.url, args.requests, args.concurrency, args.top_k, args.max_seconds, args.warmup)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"latency-{args.label}-c{args.concurrency}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
