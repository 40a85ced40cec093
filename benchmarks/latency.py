"""Send a bounded number of /similar requests over loopback to a running service and report
latency percentiles and throughput.

    python -m benchmarks.latency --url http://127.0.0.1:8000 --requests 500 --concurrency 1

A/B mode compares two running services in the same run: each query goes to both, in alternating
order, one request at a time, so machine noise hits both alike; ratios B/A are reported.

    python -m benchmarks.latency --url http://127.0.0.1:8711 --label before \
        --compare-url http://127.0.0.1:8712 --compare-label after --api-key KEY --requests 400

Queries are unseen sample incidents (another seed than the indexed ones). Results are printed and
written to benchmarks/results/latency-<label>.json."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
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


def queries_for(requests: int, top_k: int) -> list[dict]:
    return [{"short_description": r["short_description"], "description": r["description"], "top_k": top_k}
            for r in generate_incidents(max(requests, 50), seed=4242)]


def summary(ms: list[float]) -> dict:
    return {"p50_ms": round(percentile(ms, 0.50), 2), "p95_ms": round(percentile(ms, 0.95), 2),
            "p99_ms": round(percentile(ms, 0.99), 2), "mean_ms": round(statistics.fmean(ms), 2),
            "max_ms": round(max(ms), 2)}


def compare(urls: dict[str, str], requests: int, top_k: int, warmup: int, headers: dict[str, str],
            extra: dict | None = None, extras: dict[str, dict] | None = None) -> dict:
    """Sequential A/B: every query to both services, the order alternating, so both see the same noise.
    `extra` is merged into every body; `extras[label]` only into that side's (A/B of request options
    against one service: give the same URL twice)."""
    queries = queries_for(requests, top_k)
    if extra:
        queries = [{**q, **extra} for q in queries]
    extras = extras or {}
    labels = list(urls)
    clients = {label: httpx.Client(base_url=u, timeout=30, headers=headers) for label, u in urls.items()}
    latencies: dict[str, list[float]] = {label: [] for label in labels}
    statuses: dict[str, dict[int, int]] = {label: {} for label in labels}
    try:
        ready = {label: c.get("/readyz").json() for label, c in clients.items()}
        for q in queries[:warmup]:
            for label, c in clients.items():
                c.post("/similar", json={**q, **extras.get(label, {})}).raise_for_status()
        for i in range(requests):
            order = labels if i % 2 == 0 else labels[::-1]
            for label in order:
                t0 = time.perf_counter()
                r = clients[label].post("/similar", json={**queries[i % len(queries)], **extras.get(label, {})})
                latencies[label].append((time.perf_counter() - t0) * 1000)
                statuses[label][r.status_code] = statuses[label].get(r.status_code, 0) + 1
    finally:
        for c in clients.values():
            c.close()
    out: dict = {"when": datetime.now(UTC).isoformat(), "mode": "a/b sequential, alternating order",
                 "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
                 "requests_each": requests, "top_k": top_k, "extra_body": extra or {}, "extra_body_by_side": extras,
                 "services": {}}
    for label in labels:
        out["services"][label] = {"url": urls[label], "model_version": ready[label].get("model_version"),
                                  "index_version": ready[label].get("index_version"),
                                  "statuses": statuses[label], **summary(latencies[label])}
    a, b = (out["services"][label] for label in labels)
    out["ratio_b_over_a"] = {k: round(b[k] / a[k], 3) for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")}
    out["paired_median_diff_ms"] = round(statistics.median(
        y - x for x, y in zip(latencies[labels[0]], latencies[labels[1]], strict=True)), 2)
    return out


def run(url: str, requests: int, concurrency: int, top_k: int, max_seconds: float, warmup: int,
        headers: dict[str, str] | None = None) -> dict:
    queries = queries_for(requests, top_k)
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        ready = client.get("/readyz").json()
        for q in queries[:warmup]:
            client.post("/similar", json=q).raise_for_status()

    deadline = time.monotonic() + max_seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def worker(worker_id: int) -> None:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
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
        **summary(ms),
        "requests_per_s": round(len(ms) / wall, 2),
    }


def open_loop(url: str, rate: float, requests: int, top_k: int, headers: dict[str, str] | None = None,
              workers: int = 32) -> dict:
    """Open loop: request i is due at i / rate seconds, whether or not earlier ones have been answered (as
    independent ServiceNow callers arrive); its latency counts from when it was due, so queueing shows
    (no coordinated omission). At most `workers` requests are outstanding; one that starts late because all
    were busy still counts from its due time."""
    queries = queries_for(requests, top_k)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    late: list[float] = []
    lock = threading.Lock()
    client = httpx.Client(base_url=url, timeout=60, headers=headers,
                          limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers))
    client.get("/readyz")
    start = time.perf_counter() + 0.5

    def one(i: int) -> None:
        due = start + i / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        else:
            late.append(now - due)
        try:
            status = client.post("/similar", json=queries[i % len(queries)]).status_code
        except httpx.HTTPError:
            status = 0
        with lock:
            latencies.append(time.perf_counter() - due)
            statuses[status] = statuses.get(status, 0) + 1

    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(requests)))
    finally:
        client.close()
    wall = time.perf_counter() - start
    ms = [x * 1000 for x in latencies]
    return {"mode": "open loop", "offered_per_s": rate, "requests": len(ms), "statuses": statuses, **summary(ms),
            "achieved_per_s": round(len(ms) / wall, 2), "started_late": len([x for x in late if x > 0.01])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=500, help="total requests (bounded)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=300, help="stop early after this long")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--label", default="sample-5000")
    parser.add_argument("--api-key", default=None, help="sent as X-API-Key (services with auth on)")
    parser.add_argument("--compare-url", default=None, help="A/B mode: the second service")
    parser.add_argument("--compare-label", default="b")
    parser.add_argument("--compare-body-extra", default=None, help="JSON merged into the B side's bodies only")
    parser.add_argument("--body-extra", default=None, help='JSON merged into every body, e.g. \'{"filters": {...}}\'')
    args = parser.parse_args()
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.compare_url:
        result = compare({args.label: args.url, args.compare_label: args.compare_url}, args.requests, args.top_k,
                         args.warmup, headers, json.loads(args.body_extra) if args.body_extra else None,
                         {args.compare_label: json.loads(args.compare_body_extra)} if args.compare_body_extra else None)
        out = RESULTS / f"latency-ab-{args.label}-vs-{args.compare_label}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        print(f"written to {out}")
        return
    result = run(args.url, args.requests, args.concurrency, args.top_k, args.max_seconds, args.warmup, headers)
    out = RESULTS / f"latency-{args.label}-c{args.concurrency}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
