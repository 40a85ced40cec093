"""Retrieval without encoding (everything /similar does after the encoder), BM25 statistics from the
document-frequency table vs counted in Qdrant per query: A/B in one run, same index, same queries.

    python -m benchmarks.retrieval [--incidents 20000] [--queries 300]

The index holds `--incidents` generated sample incidents (real BM25 sparse vectors of their text) with
*generated* dense vectors: each word gets a fixed random 768-d vector, an incident the normalised sum of its
words' plus noise, so similar texts get similar vectors as with a real encoder, without the hours of encoding
on 2 cores (say so when quoting these figures). Queries are other generated incidents, encoded the same way.
Writes benchmarks/results/retrieval-<incidents>.json|md."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.machine import cpu_facts, machine_line
from indexing import lexical
from indexing.incidents import Incident
from indexing.search import SEARCH_STAGES, HybridSearcher
from indexing.store.base import IncidentStore, IndexMeta, IndexPoint
from indexing.store.edge import EdgeStore
from training.data.sample import generate_incidents

DIM = 768


class Counting:
    """The same store, with BM25 statistics counted in Qdrant for every query (as before the table)."""

    def __init__(self, store: EdgeStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def bm25_stats(self, term_ids: Sequence[int]) -> tuple[int, dict[int, int]]:
        return IncidentStore.bm25_stats(self.store, term_ids)


def word_vectors(analyzer: lexical.Analyzer) -> Any:
    cache: dict[str, np.ndarray] = {}

    def embed(text: str, seed: int) -> np.ndarray:
        v = np.zeros(DIM, np.float32)
        for word in analyzer.tokens(text):
            if word not in cache:
                cache[word] = np.random.default_rng(lexical.term_id(word)).standard_normal(DIM).astype(np.float32)
            v += cache[word]
        v += np.random.default_rng(seed).standard_normal(DIM).astype(np.float32) * 2.0
        return v / max(float(np.linalg.norm(v)), 1e-9)

    return embed


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "mean_ms": round(float(a.mean()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    rows = generate_incidents(args.incidents + args.queries, seed=17)
    incidents = [Incident.model_validate(r) for r in rows[: args.incidents]]
    queries = [Incident.model_validate(r) for r in rows[args.incidents :]]
    analyzer = lexical.Analyzer(stem=True)
    avgdl = lexical.average_document_length(analyzer, [(i.short_description, i.description) for i in incidents])
    bm25 = lexical.BM25Encoder(analyzer, lexical.BM25Params(1.2, 0.75, avgdl), max_query_terms=256)
    embed = word_vectors(analyzer)
    figures: dict[str, Any] = {"incidents": args.incidents, "queries": args.queries, "machine": cpu_facts(),
                               "vectors": "generated (word-sum + noise, 768-d); BM25 from the real text"}
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as tmp:
        store = EdgeStore(Path(tmp) / "index")
        store.create_index(IndexMeta(index_version="bench", model_version="bench", encoder_id="bench", dim=DIM,
                                     analyzer=analyzer.name, k1=1.2, b=0.75, avgdl=avgdl,
                                     created_at="2026-11-23T00:00:00+00:00"))
        t0 = time.perf_counter()
        for start in tqdm(range(0, len(incidents), 500), desc="upserting", unit="page"):
            page = incidents[start : start + 500]
            store.upsert([IndexPoint(i.point_id, embed(i.text(), k + start), bm25.document(i.short_description,
                                                                                           i.description),
                                     i.payload()) for k, i in enumerate(page)])
        figures["upsert_seconds"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        store.optimize()
        figures["optimize_seconds"] = round(time.perf_counter() - t0, 1)
        searchers = {"table": HybridSearcher(store, bm25, 0.7, 0.3, normalization="query_self_score"),
                     "counted": HybridSearcher(Counting(store), bm25, 0.7, 0.3,  # type: ignore[arg-type]
                                               normalization="query_self_score")}
        vectors = [embed(q.text(), 10_000_000 + k) for k, q in enumerate(queries)]
        for searcher in searchers.values():  # warm-up, and the table is built here
            for v, q in zip(vectors[:20], queries[:20], strict=True):
                searcher.search(v, q.text(), 5)
        times: dict[str, list[float]] = {n: [] for n in searchers}
        stage_sums: dict[str, dict[str, float]] = {n: {} for n in searchers}
        exact = {n: 0 for n in searchers}
        same = 0
        for k, (v, q) in enumerate(zip(vectors, queries, strict=True)):
            answers = {}
            for name in (list(searchers) if k % 2 == 0 else list(reversed(searchers))):
                t = time.perf_counter()
                outcome = searchers[name].search(v, q.text(), 5)
                times[name].append((time.perf_counter() - t) * 1000)
                answers[name] = [(r.point_id, round(r.score, 9)) for r in outcome.results]
                exact[name] += outcome.certified
                for stage, seconds in outcome.stage_seconds.items():
                    stage_sums[name][stage] = stage_sums[name].get(stage, 0.0) + seconds * 1000
            same += answers["table"] == answers["counted"]
        figures["retrieval"] = {n: {**stats(t), "stages_mean_ms": {s: round(x / len(t), 3) for s, x in
                                                                   stage_sums[n].items()},
                                    "certified_exact": exact[n] / len(t)} for n, t in times.items()}
        figures["identical_answers"] = same / len(queries)
        figures["p50_ratio_table_vs_counted"] = round(figures["retrieval"]["table"]["p50_ms"] /
                                                      figures["retrieval"]["counted"]["p50_ms"], 3)
        store.close()
    print(json.dumps(figures, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"retrieval-{args.incidents}"
    (args.out / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    r = figures["retrieval"]
    lines = [f"# Retrieval without encoding at {args.incidents} incidents: document-frequency table vs counting", "",
             f"`python -m benchmarks.retrieval --incidents {args.incidents} --queries {args.queries}`", "",
             machine_line(figures["machine"]), "",
             f"Dense vectors {figures['vectors']}. Index built in {figures['upsert_seconds']} s of upserts and "
             f"{figures['optimize_seconds']} s of optimize(). Both variants answer every query (alternating "
             f"order); identical answers: {figures['identical_answers']:.0%}.", "",
             "| BM25 statistics | p50 ms | p95 ms | p99 ms | " + " | ".join(SEARCH_STAGES) + " | certified exact |",
             "|---" * (5 + len(SEARCH_STAGES)) + "|"]
    for n in ("counted", "table"):
        s = r[n]["stages_mean_ms"]
        lines.append(f"| {n} | {r[n]['p50_ms']} | {r[n]['p95_ms']} | {r[n]['p99_ms']} | "
                     + " | ".join(str(s.get(stage)) for stage in SEARCH_STAGES)
                     + f" | {r[n]['certified_exact']:.0%} |")
    lines += ["", f"p50 table / counted: {figures['p50_ratio_table_vs_counted']} (stage columns: mean ms per "
              "query)", ""]
    (args.out / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
