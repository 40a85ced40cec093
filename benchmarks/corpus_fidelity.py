"""How faithful the scale corpus's generated vectors are to real ones, where it matters for the hybrid search.

    python -m benchmarks.corpus_fidelity [--bundle BUNDLE_DIR] [--size 5000] [--real 1000] [--queries 200]

The scale suites (benchmarks/corpus.py) encode a real subset and give every other incident a noisy copy of a real
vector. What the hybrid search costs depends on how often the dense top-K and the BM25 top-K agree: agreement
means candidates that need no completion and a top-k certified at the first K. This suite builds three indexes of
the same `size` sample incidents and asks them the same real-encoded queries:
* `real`: every incident encoded by the real encoder (the reference);
* `text`: `real` of them encoded, the others copies of the vector of the real incident nearest in text;
* `random`: the same, copies of a random real incident's vector (what the scale suites used before).
Per corpus: the dense/BM25 top-100 overlap, the best dense score, the share of queries whose K had to grow, the
candidates completed per query, and retrieval times (one process, same run: compare the ratios).
Writes benchmarks/results/corpus-fidelity.json|md."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.corpus import Corpus, build_corpus, build_data_dir, bundle_or_minilm
from benchmarks.machine import cpu_facts, suite_header, write_suite
from indexing.bundle import Bundle
from indexing.encoder import OnnxEncoder
from indexing.indexer import bm25_encoder_for
from indexing.search import DEFAULT_TOP_K, HybridSearcher
from indexing.store.edge import EdgeStore

LIST_K = 100


def probe(bundle: Bundle, corpus: Corpus, root: Path) -> dict[str, Any]:
    built = build_data_dir(root, bundle, corpus)
    store = EdgeStore(built.index_dir)
    meta = store.meta()
    assert meta is not None
    bm25 = bm25_encoder_for(meta, bundle.max_query_terms)
    searcher = HybridSearcher(store, bm25, bundle.dense_weight, bundle.bm25_weight, candidate_k=LIST_K,
                              normalization=bundle.scoring.normalization)
    texts = [q.text() for q in corpus.queries]
    searcher.search(corpus.query_vectors[0], texts[0], DEFAULT_TOP_K)
    overlap, best, grown, completed, ms = [], [], 0, [], []
    for vector, text in zip(corpus.query_vectors, texts, strict=True):
        dense = store.search_dense(vector, LIST_K)
        sparse = store.search_sparse(bm25.query(text), LIST_K)
        overlap.append(len({h.point_id for h in dense} & {h.point_id for h in sparse}))
        best.append(dense[0].score)
        t0 = time.perf_counter()
        outcome = searcher.search(vector, text, DEFAULT_TOP_K)
        ms.append((time.perf_counter() - t0) * 1000)
        grown += outcome.candidate_k > LIST_K
        completed.append(outcome.completed)
    store.close()
    return {"top100_overlap": {"mean": round(float(np.mean(overlap)), 1), "p10": float(np.percentile(overlap, 10)),
                               "p50": float(np.percentile(overlap, 50)), "p90": float(np.percentile(overlap, 90))},
            "best_dense_median": round(float(np.median(best)), 3),
            "k_grown_share": round(grown / len(texts), 3), "completed_mean": round(float(np.mean(completed)), 1),
            "retrieval_p50_ms": round(float(np.percentile(ms, 50)), 2),
            "retrieval_p99_ms": round(float(np.percentile(ms, 99)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: MiniLM built from its package)")
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--real", type=int, default=1000, help="incidents encoded in the generated corpora")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corpus-fidelity-") as tmp:
        bundle = bundle_or_minilm(args.bundle, Path(tmp))
        encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length)
        rows = {}
        for name, real, copies in (("real", args.size, "text"), ("text", args.real, "text"),
                                   ("random", args.real, "random")):
            corpus = build_corpus(bundle, encoder, args.size, real, args.queries, copies)
            rows[name] = {"corpus": corpus.describe(), **probe(bundle, corpus, Path(tmp) / name)}
            print(name, rows[name], flush=True)
    figures = {"machine": cpu_facts(), "bundle": bundle.model_version, "rows": rows}
    command = "python -m benchmarks.corpus_fidelity " + " ".join(sys.argv[1:])
    lines = [*suite_header("Generated vectors against real ones, as the hybrid search sees them", command,
                           figures["machine"]),
             f"Bundle {bundle.model_version}; {args.size} sample incidents, {args.queries} real-encoded queries, "
             f"top-{DEFAULT_TOP_K}, K = {LIST_K}.", "",
             "| corpus | dense/BM25 top-100 overlap mean (p10 / p50 / p90) | best dense median | K grown "
             "| completed per query | retrieval p50 / p99 ms |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        o = r["top100_overlap"]
        lines.append(f"| {name}: {r['corpus']} | {o['mean']} ({o['p10']:.0f} / {o['p50']:.0f} / {o['p90']:.0f}) | "
                     f"{r['best_dense_median']} | {r['k_grown_share']:.1%} | {r['completed_mean']} | "
                     f"{r['retrieval_p50_ms']} / {r['retrieval_p99_ms']} |")
    write_suite(args.out, "corpus-fidelity", figures, lines)


if __name__ == "__main__":
    main()
