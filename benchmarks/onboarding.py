"""Onboarding throughput: bulk encode + write, before and after length-bucketed batching, in one run.

    python -m benchmarks.onboarding [--bundle BUNDLE_DIR] [--sample 1200] [--seamonkey 300]

Each path encodes incidents with the bundle's encoder, BM25-encodes them and writes them into a fresh Qdrant
Edge index (each upsert flushed, then optimize), on the generated sample (short texts) and on SeaMonkey bug
reports (long texts, many cut at the model's 384 tokens):
* `index, before`: pages of 64 in input order, one ONNX Runtime run per page (batches by count: every text
  padded to the page's longest), encode then write: the `incident-sim index` path before token budgets;
* `index, budget only`: the same loop, the encoder batching by a padded-token budget (indexing.length_batches);
* `index, after`: `indexing.indexer.index_incidents` as shipped: pages of 256, the budget, and the next page
  encoded while this one is written;
* `push/sync pages of 200`: `Engine.upsert_incidents` on a sync page, before (runs of 32 by count) and after
  (the budget, runs of at most 64);
* `rebuild pages`: a rebuild's pages, before (64 per page, runs of 32 by count) and after (256, the budget).
Vectors: each path's against the `before` path's and against each text encoded alone (the /similar query
path), as cosines; dynamic INT8 ranges depend on batch-mates, so none of them is 1. What that does to the flag:
every incident asked as a query (encoded alone, as /similar does), its best dense score among the other stored
incidents, against the same with every stored vector encoded alone (what `incident-sim calibrate` scores, so the
calibrated threshold sees no batch effect); the hybrid score moves by 0.7 x that.
Writes benchmarks/results/onboarding.json|md (the `onboarding` suite)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.corpus import bm25_for, bundle_or_minilm
from benchmarks.ingest import new_store
from benchmarks.machine import cpu_facts, suite_header, write_suite
from indexing.bundle import Bundle
from indexing.encoder import DEFAULT_TOKEN_BUDGET, OnnxEncoder
from indexing.incidents import Incident
from indexing.indexer import MAX_RUN_ROWS, build_points, index_incidents
from indexing.store.edge import EdgeStore
from service.versions.reembed import EMBED_PAGE


def best_other(queries: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """Each query's best cosine among the stored vectors of the other incidents (row i is incident i)."""
    scores = queries @ stored.T
    np.fill_diagonal(scores, -np.inf)
    return scores.max(axis=1)


def corpora(sample: int, seamonkey: int) -> dict[str, list[Incident]]:
    from training.data.sample import generate_incidents

    out = {"sample": [Incident.model_validate(r) for r in generate_incidents(sample, seed=61)]}
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "seamonkey"
    if seamonkey and folder.is_dir():
        from training.data.labels import load_seamonkey

        out["seamonkey"] = list(load_seamonkey(folder).incidents[:seamonkey])
    return out


def sequential(incidents: list[Incident], bundle: Bundle, encoder: OnnxEncoder, store: EdgeStore, page: int,
               batch: int) -> np.ndarray:
    """Encode a page, write it, next page; returns the stored vectors in input order."""
    bm25 = bm25_for(bundle, incidents)
    vectors = []
    for start in range(0, len(incidents), page):
        points, _ = build_points(incidents[start : start + page], encoder, bm25, dense_text=bundle.dense_text,
                                 batch_size=batch)
        store.upsert(points)
        vectors += [p.dense for p in points]
    store.optimize()
    return np.stack(vectors)


def stored_vectors(store: EdgeStore, incidents: list[Incident]) -> np.ndarray:
    found = {s.point_id: s.dense for s in store.fetch([i.point_id for i in incidents], with_vectors=True)}
    return np.stack([np.asarray(found[i.point_id], dtype=np.float32) for i in incidents])


def run_suite(bundle: Bundle, sample: int, seamonkey: int, out: Path, command: str) -> dict[str, Any]:
    make = {budget: OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length,
                                allow_spinning=False, token_budget=budget) for budget in (0, DEFAULT_TOKEN_BUDGET)}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="onboarding-bench-") as tmp:
        for name, incidents in corpora(sample, seamonkey).items():
            for enc in make.values():  # warm-up: the first runs allocate
                enc.encode([i.text() for i in incidents[:8]], batch_size=8)
            alone = np.stack([make[0].encode([i.text()]).vectors[0] for i in incidents])
            best_alone = best_other(alone, alone)
            paths: list[tuple[str, int, Callable[[EdgeStore], np.ndarray | None]]] = [
                ("index, before", 0, lambda s, inc=incidents: sequential(inc, bundle, make[0], s, 64, 64)),
                ("index, budget only", DEFAULT_TOKEN_BUDGET,
                 lambda s, inc=incidents: sequential(inc, bundle, make[DEFAULT_TOKEN_BUDGET], s, 64, 64)),
                ("index, after", DEFAULT_TOKEN_BUDGET,
                 lambda s, inc=incidents: index_incidents(inc, bundle, make[DEFAULT_TOKEN_BUDGET], s,
                                                          progress=False) and None),
                ("push/sync pages of 200, before", 0, lambda s, inc=incidents: sequential(inc, bundle, make[0], s,
                                                                                          200, 32)),
                ("push/sync pages of 200, after", DEFAULT_TOKEN_BUDGET,
                 lambda s, inc=incidents: sequential(inc, bundle, make[DEFAULT_TOKEN_BUDGET], s, 200, MAX_RUN_ROWS)),
                ("rebuild pages, before", 0, lambda s, inc=incidents: sequential(inc, bundle, make[0], s, 64, 32)),
                ("rebuild pages, after", DEFAULT_TOKEN_BUDGET,
                 lambda s, inc=incidents: sequential(inc, bundle, make[DEFAULT_TOKEN_BUDGET], s, EMBED_PAGE,
                                                     MAX_RUN_ROWS)),
            ]
            before: np.ndarray | None = None
            for label, budget, path in paths:
                store = new_store(Path(tmp) / f"{name}-{len(rows)}", bundle, 1.0)
                t0 = time.perf_counter()
                path(store)
                seconds = time.perf_counter() - t0
                vectors = stored_vectors(store, incidents)
                store.close()
                before = vectors if before is None else before
                to_before = (vectors * before).sum(axis=1)
                to_alone = (vectors * alone).sum(axis=1)
                shift = np.abs(best_other(alone, vectors) - best_alone)
                row = {"corpus": name, "incidents": len(incidents), "path": label, "token_budget": budget,
                       "seconds": round(seconds, 2), "per_s": round(len(incidents) / seconds, 2),
                       "cos_to_before": {"mean": round(float(to_before.mean()), 4),
                                         "min": round(float(to_before.min()), 4)},
                       "cos_to_alone": {"mean": round(float(to_alone.mean()), 4),
                                        "min": round(float(to_alone.min()), 4)},
                       "best_dense_shift": {"mean": round(float(shift.mean()), 4),
                                            "p95": round(float(np.percentile(shift, 95)), 4),
                                            "max": round(float(shift.max()), 4)}}
                rows.append(row)
                print(row, flush=True)
    for row in rows:  # the speed-up against the same corpus' and batching's `before` row
        base = next(r for r in rows if r["corpus"] == row["corpus"]
                    and r["path"] == row["path"].replace("after", "before").replace("budget only", "before"))
        row["speedup"] = round(row["per_s"] / base["per_s"], 2)
    figures = {"machine": cpu_facts(), "bundle": bundle.model_version, "token_budget": DEFAULT_TOKEN_BUDGET,
               "rows": rows}
    lines = [*suite_header("Onboarding throughput: length-bucketed batching, before and after", command,
                           figures["machine"]),
             f"Bundle {bundle.model_version}; every row a fresh Qdrant Edge index (each upsert flushed, then "
             f"optimize); token budget {DEFAULT_TOKEN_BUDGET} padded tokens per ONNX Runtime run; all rows in one "
             "process, one after another. cos to before / alone: each incident's stored vector against the "
             "`before` path's and against its text encoded alone (the query path). Best-score shift: each incident "
             "asked alone, |its best dense score among the others - the same with all stored vectors encoded "
             "alone| (what calibration scores), mean / p95 / max.", "",
             "| corpus | incidents | path | seconds | incidents/s | speed-up | cos to before mean / min "
             "| cos to alone mean / min | best-score shift |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['corpus']} | {r['incidents']} | {r['path']} | {r['seconds']} | {r['per_s']} | "
              f"{r['speedup']:.2f}x | {r['cos_to_before']['mean']:.4f} / {r['cos_to_before']['min']:.4f} | "
              f"{r['cos_to_alone']['mean']:.4f} / {r['cos_to_alone']['min']:.4f} | "
              f"{r['best_dense_shift']['mean']:.4f} / {r['best_dense_shift']['p95']:.4f} / "
              f"{r['best_dense_shift']['max']:.4f} |" for r in rows]
    write_suite(out, "onboarding", figures, lines)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: MiniLM built here)")
    parser.add_argument("--sample", type=int, default=1200, help="generated sample incidents")
    parser.add_argument("--seamonkey", type=int, default=300, help="SeaMonkey bug reports (0: skip)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    command = "python -m benchmarks.onboarding " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="onboarding-bundle-") as where:
        run_suite(bundle_or_minilm(args.bundle, Path(where)), args.sample, args.seamonkey, args.out, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
