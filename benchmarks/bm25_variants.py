"""Which BM25 analyzer and parameters make the hybrid best? Evaluated offline with the served formulas.

    python -m benchmarks.bm25_variants --data seamonkey
    python -m benchmarks.bm25_variants --data sample --n 2000

The dense part is the bundle's (incidents indexed and read back once); for every variant the BM25
sparse vectors are rebuilt with that analyzer/k1/b and the whole time-ordered protocol is rerun.
The choice is made on the validation split's hybrid MRR; test numbers are shown beside it, never
used to choose. Writes benchmarks/results/bm25-variants-<corpus>.json|md."""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

import numpy as np

from indexing import lexical
from indexing.bundle import load_bundle
from service.settings import Settings
from service.wiring import resolve_bundle_path
from training.evaluate import OfflineScorer, build_scorer, evaluate_corpus
from training.quality import evaluation_index_dir, load_labelled
from training.report import paired_difference

RESULTS = Path(__file__).resolve().parent / "results"


def mean_mrr(queries: list, method: str) -> float:  # type: ignore[type-arg]
    return float(np.mean([q.metrics[method]["mrr"] for q in queries])) if queries else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="seamonkey")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--bootstrap", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    bundle = load_bundle(resolve_bundle_path(settings))
    corpus = load_labelled(args.data, n=args.n)
    base, encoder = build_scorer(bundle, corpus, evaluation_index_dir(settings.data_dir, corpus, bundle))
    vectors: dict[str, np.ndarray] = {}
    documents = [(i.short_description, i.description) for i in corpus.incidents]
    rows = []
    analyzers = [lexical.Analyzer(split=sp, stop=st, stem=sm, summary_weight=sw)
                 for sp, st, sm, sw in itertools.product((True, False), (True, False), (False, True), (1, 2))]
    grid = [(a, k1, b, norm) for a in analyzers for k1, b in ((1.2, 0.75), (0.9, 0.4), (1.5, 0.9))
            for norm in lexical.NORMALIZATIONS]
    for analyzer, k1, b, norm in grid:
        params = lexical.BM25Params(k1=k1, b=b, avgdl=lexical.average_document_length(analyzer, documents))
        bm25 = lexical.BM25Encoder(analyzer, params)
        scorer = OfflineScorer(base.dense, [bm25.document(s, d).as_dict() for s, d in documents], bm25,
                               bundle.dense_weight, bundle.bm25_weight, norm)
        evaluation = evaluate_corpus(corpus, scorer, encoder, progress=False, query_vectors=vectors)
        val, test = evaluation.split("validation"), evaluation.split("test")
        rows.append({
            "analyzer": analyzer.name, "k1": k1, "b": b, "normalization": norm,
            "validation": {m: mean_mrr(val, m) for m in ("dense", "bm25", "hybrid")},
            "test": {m: mean_mrr(test, m) for m in ("dense", "bm25", "hybrid")},
            "test_hybrid_minus_dense_mrr": paired_difference(test, "mrr", "hybrid", "dense", args.bootstrap),
            "validation_queries": len(val), "test_queries": len(test),
        })
        print(f"{analyzer.name:34s} k1={k1} b={b} {norm:17s} val hybrid MRR {rows[-1]['validation']['hybrid']:.3f} "
              f"(bm25 {rows[-1]['validation']['bm25']:.3f}) test hybrid {rows[-1]['test']['hybrid']:.3f}", flush=True)
    default = next(r for r in rows if r["analyzer"] == lexical.ANALYZER_NAME and r["k1"] == 1.2
                   and r["normalization"] == "idf_upper_bound")
    best = max(rows, key=lambda r: (round(r["validation"]["hybrid"], 4), r["validation"]["bm25"]))
    result = {"corpus": corpus.name, "bundle": bundle.model_version, "chosen_on": "validation hybrid MRR",
              "default": default, "best": best, "variants": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"bm25-variants-{corpus.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=list) + "\n")
    lines = [f"# BM25 variants on {corpus.name} ({bundle.model_version})", "",
             f"Chosen by validation hybrid MRR ({default['validation_queries']} validation queries, "
             f"{default['test_queries']} test queries). Test is shown, never used to choose.", "",
             "| analyzer | k1 | b | normalization | val dense | val bm25 | val hybrid | test dense | test bm25 | "
             "test hybrid | test hybrid-dense [95% CI] |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["validation"]["hybrid"]):
        d = r["test_hybrid_minus_dense_mrr"]
        lines.append(f"| {r['analyzer']} | {r['k1']} | {r['b']} | {r['normalization']} | "
                     f"{r['validation']['dense']:.3f} | {r['validation']['bm25']:.3f} | "
                     f"{r['validation']['hybrid']:.3f} | "
                     f"{r['test']['dense']:.3f} | {r['test']['bm25']:.3f} | {r['test']['hybrid']:.3f} | "
                     f"{d['value']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"default: {default['analyzer']} -> val hybrid {default['validation']['hybrid']:.3f}; best: "
          f"{best['analyzer']} k1={best['k1']} b={best['b']} {best['normalization']} -> "
          f"val hybrid {best['validation']['hybrid']:.3f}, test hybrid {best['test']['hybrid']:.3f}")
    print(f"written to {stem}.json and .md")


if __name__ == "__main__":
    main()
