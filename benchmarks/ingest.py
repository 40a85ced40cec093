"""Indexing throughput (incidents/s) at the batch sizes that matter, and quality beside speed.

    python -m benchmarks.ingest [--bundle BUNDLE_DIR] [--incidents 256]

Indexing: incidents encoded by the bundle's encoder, BM25-encoded and upserted into a Qdrant Edge index, as
`incident-sim index` (pages of 64), `POST /incidents/bulk` (pages as sent) and `PUT /incidents/{number}` (1)
do, at batch sizes 1, 16, 64 and 256; then upserts alone (vectors already computed) at 1, 64 and 1,000, the
store's share. Quality: the evaluation's headline numbers for the bundle on the sample data (time-ordered
splits, the bundle's threshold), so a speed change that costs quality shows in the same run.
Writes benchmarks/results/indexing.json|md and quality.json|md (the `indexing` and `quality` suites)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.corpus import bm25_for, bundle_or_minilm
from benchmarks.machine import cpu_facts, suite_header, write_suite
from indexing.bundle import Bundle
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from indexing.indexer import build_points
from indexing.store.base import IndexMeta, IndexPoint
from indexing.store.edge import EdgeStore
from training.data.sample import generate_incidents

ENCODE_BATCHES = (1, 16, 64, 256)
UPSERT_BATCHES = (1, 64, 1000)


def new_store(path: Path, bundle: Bundle, avgdl: float) -> EdgeStore:
    store = EdgeStore(path)
    store.create_index(IndexMeta(index_version="ingest", model_version=bundle.model_version,
                                 encoder_id=bundle.encoder_id, dim=bundle.dim, analyzer=bundle.bm25["analyzer"],
                                 k1=float(bundle.bm25["k1"]), b=float(bundle.bm25["b"]), avgdl=avgdl,
                                 created_at="2026-11-23T00:00:00+00:00"))
    return store


def indexing_suite(bundle: Bundle, incidents: int, out: Path, command: str) -> dict[str, Any]:
    encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length, allow_spinning=False)
    rows: list[dict[str, Any]] = []
    sample = [Incident.model_validate(r) for r in generate_incidents(incidents, seed=99)]
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        bm25 = bm25_for(bundle, sample)
        bundle.dense_text.embed(encoder, [(i.short_description, i.description) for i in sample[:8]], 8)  # warm-up
        for batch in ENCODE_BATCHES:
            store = new_store(Path(tmp) / f"enc-{batch}", bundle, bm25.params.avgdl)
            encode = upsert = 0.0
            for start in range(0, len(sample), batch):
                page = sample[start : start + batch]
                t0 = time.perf_counter()
                points, _ = build_points(page, encoder, bm25, dense_text=bundle.dense_text, batch_size=batch)
                t1 = time.perf_counter()
                store.upsert(points)
                upsert += time.perf_counter() - t1
                encode += t1 - t0
            store.close()
            total = encode + upsert
            rows.append({"path": "encode + upsert", "batch": batch, "incidents": len(sample),
                         "per_s": round(len(sample) / total, 1), "encode_share": round(encode / total, 3)})
            print(rows[-1], flush=True)
        vectors = np.random.default_rng(0).standard_normal((5000, bundle.dim)).astype(np.float32)
        many = [Incident.model_validate(r) for r in generate_incidents(5000, seed=98)]
        prepared = [IndexPoint(i.point_id, vectors[k] / np.linalg.norm(vectors[k]),
                               bm25.document(i.short_description, i.description), i.payload())
                    for k, i in enumerate(many)]
        for batch in UPSERT_BATCHES:
            store = new_store(Path(tmp) / f"ups-{batch}", bundle, bm25.params.avgdl)
            n = 500 if batch == 1 else len(prepared)
            t0 = time.perf_counter()
            for start in range(0, n, batch):
                store.upsert(prepared[start : min(start + batch, n)])
            seconds = time.perf_counter() - t0
            store.close()
            rows.append({"path": "upsert only", "batch": batch, "incidents": n, "per_s": round(n / seconds, 1),
                         "encode_share": 0.0})
            print(rows[-1], flush=True)
    figures = {"machine": cpu_facts(), "bundle": bundle.model_version, "rows": rows}
    lines = [*suite_header("Indexing throughput", command, figures["machine"]),
             f"Bundle {bundle.model_version}; generated sample incidents; one Qdrant Edge index per row (each "
             "upsert flushed, as every write is); `optimize()` not included (benchmarks.scale times it).", "",
             "| path | batch | incidents | incidents/s | encode share |", "|---|---|---|---|---|"]
    lines += [f"| {r['path']} | {r['batch']} | {r['incidents']} | {r['per_s']} | {r['encode_share']:.0%} |"
              for r in rows]
    write_suite(out, "indexing", figures, lines)
    return figures


def value(x: Any) -> float | None:
    """A reported figure: a number, or {"value": ..., "ci95": ...}."""
    if isinstance(x, dict):
        x = x.get("value")
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def quality_suite(bundle: Bundle, n: int, out: Path, command: str) -> dict[str, Any]:
    from training.quality import load_labelled, run_quality

    t0 = time.perf_counter()
    report, _, threshold = run_quality(bundle, load_labelled("sample", n=n), n_boot=200)
    seconds = time.perf_counter() - t0
    test = report["splits"]["test"]["hybrid"]
    dense = report["splits"]["test"]["dense"]
    per_incident = report["threshold"]["test"]
    parity = bundle.manifest.get("parity") or {}
    figures = {"machine": cpu_facts(), "bundle": bundle.model_version, "corpus": f"sample ({n} incidents)",
               "seconds": round(seconds, 1), "threshold": threshold,
               "threshold_source": bundle.threshold_source,
               "test": {"hybrid_mrr": test["mrr"]["value"], "dense_mrr": dense["mrr"]["value"],
                        "hybrid_roc_auc": test["roc_auc"]["value"],
                        "false_alarm_rate_per_incident": value(per_incident.get("false_alarm_rate")),
                        "hit_rate": value(per_incident.get("hit_rate")),
                        "flag_precision": value(per_incident.get("flag_precision")),
                        "pair_fpr": value(per_incident.get("fpr"))},
               "encoder_precision": bundle.manifest["encoder"].get("precision"),
               "int8_parity": {k: v for k, v in parity.items() if not isinstance(v, (dict, list))}}
    t = figures["test"]

    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines = [*suite_header("Quality beside speed", command, figures["machine"]),
             f"Bundle {bundle.model_version} (threshold {threshold:.4f}, {bundle.threshold_source}) evaluated on "
             f"{figures['corpus']}, time-ordered splits, test split; {figures['seconds']} s.", "",
             "| hybrid MRR | dense MRR | hybrid ROC-AUC | false alarms per incident | hit rate | flag precision "
             "| pair FPR |", "|---|---|---|---|---|---|---|",
             f"| {f(t['hybrid_mrr'])} | {f(t['dense_mrr'])} | {f(t['hybrid_roc_auc'])} | "
             f"{f(t['false_alarm_rate_per_incident'])} | {f(t['hit_rate'])} | {f(t['flag_precision'])} | "
             f"{f(t['pair_fpr'])} |", "",
             f"Encoder: {figures['encoder_precision']}; parity record: {figures['int8_parity']}"]
    write_suite(out, "quality", figures, lines)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--incidents", type=int, default=256)
    parser.add_argument("--quality-incidents", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingest-bundle-") as tmp:
        bundle = bundle_or_minilm(args.bundle, Path(tmp))
        command = "python -m benchmarks.ingest " + " ".join(sys.argv[1:])
        indexing_suite(bundle, args.incidents, args.out, command)
        quality_suite(bundle, args.quality_incidents, args.out, command)


if __name__ == "__main__":
    main()
