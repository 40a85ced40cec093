"""What a cap on the tokens of a /similar query (INCIDENT_SIM_MAX_QUERY_TOKENS) costs in quality and saves in
encode latency, so ops can choose with numbers.

    python -m benchmarks.query_tokens [--bundle DIR] [--data sample,seamonkey] [--caps 32,64,128]

For each labelled corpus the incidents are indexed once at full length (as the service stores them); then every
incident is asked as a new query under each cap, with the time-ordered protocol of `incident-sim evaluate`
(training.evaluate), and the paired difference to the uncapped query is reported with a bootstrap interval.
Encode latency: the same query texts encoded one at a time (as /similar does) under every cap, the caps taking
turns per query (A/B/C in one run, ratios to the uncapped encode reported)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.corpus import bundle_or_minilm
from benchmarks.latency import summary
from benchmarks.machine import cpu_facts, suite_header, write_suite
from indexing.bundle import Bundle
from indexing.encoder import OnnxEncoder, TokenCappedEncoder
from indexing.incidents import incident_text
from indexing.search import DEFAULT_TOP_K
from training.data.labels import LabelledCorpus
from training.evaluate import build_scorer, evaluate_corpus, incident_summary, summarise
from training.promote import paired
from training.quality import load_labelled


def _encode_latency(encoder: OnnxEncoder, texts: list[str], caps: list[int | None]) -> dict[str, dict[str, float]]:
    """Per cap: p50/p99 ms of encoding each text alone, caps taking turns per text (warm-up excluded)."""
    for text in texts[:5]:
        encoder.encode_one(text)
    times: dict[str, list[float]] = {str(c): [] for c in caps}
    for i, text in enumerate(tqdm(texts, desc="timing encodes", unit="query")):
        turn = caps[i % len(caps):] + caps[: i % len(caps)]  # rotate who goes first
        for cap in turn:
            t = time.perf_counter()
            encoder.encode_one(text, max_tokens=cap)
            times[str(cap)].append((time.perf_counter() - t) * 1000)
    return {cap: summary(v) for cap, v in times.items()}


def run_corpus(bundle: Bundle, corpus: LabelledCorpus, caps: list[int], n_boot: int, timed_queries: int,
               work: Path) -> dict[str, Any]:
    encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length)
    scorer, _ = build_scorer(bundle, corpus, work / f"index-{corpus.name}", encoder=encoder)
    model_limit = bundle.max_seq_length
    all_caps: list[int | None] = [None, *[c for c in caps if c < model_limit]]
    texts = [incident_text(i.short_description, i.description) for i in corpus.incidents]
    token_counts = [len(encoder.tokenizer.encode(t).ids) for t in texts]
    threshold = bundle.threshold
    evaluations = {}
    for cap in all_caps:
        query_encoder = encoder if cap is None else TokenCappedEncoder(encoder, cap)
        evaluations[cap] = evaluate_corpus(corpus, scorer, query_encoder, dense_text=bundle.dense_text)
    full = evaluations[None]
    rows = []
    for cap in all_caps:
        ev = evaluations[cap]
        test = ev.split("test")
        headline = summarise(test, None, n_boot)
        per_incident = incident_summary(ev.incident_split("test"), threshold, n_boot, (DEFAULT_TOP_K,))[
            "hybrid"][f"top{DEFAULT_TOP_K}"]
        limit = model_limit if cap is None else cap
        rows.append({
            "cap": cap, "tokens_read": limit,
            "queries_cut": round(sum(n > limit for n in token_counts) / len(token_counts), 4),
            "test_queries": len(test),
            "hybrid_mrr": headline["hybrid"]["mrr"]["value"],
            "hybrid_recall@5": headline["hybrid"]["recall@5"]["value"],
            "hybrid_roc_auc": headline["hybrid"]["roc_auc"]["value"],
            "mrr_vs_uncapped": None if cap is None else paired(full.split("test"), test, "hybrid", "mrr", n_boot),
            "false_alarm_rate": per_incident["false_alarm_rate"],
            "hit_rate": per_incident["hit_rate"],
        })
    timed = texts[:timed_queries]
    latency = _encode_latency(encoder, timed, all_caps)
    base = latency["None"]["p50_ms"]
    for row in rows:
        row["encode"] = {**latency[str(row["cap"])],
                         "p50_ratio_to_uncapped": round(latency[str(row["cap"])]["p50_ms"] / base, 3)}
    return {"corpus": corpus.name, "incidents": len(corpus.incidents),
            "tokens_per_incident": {"median": int(np.median(token_counts)),
                                    "p90": int(np.percentile(token_counts, 90)), "max": int(max(token_counts))},
            "timed_queries": len(timed), "rows": rows}


def _value(x: Any) -> str:
    if isinstance(x, dict):
        if "ci95" in x and x.get("value") is not None:
            lo, hi = x["ci95"]
            return f"{x['value']:+.3f} ({lo:+.3f} .. {hi:+.3f})"
        if "value" in x:
            return f"{x['value']:.3f}"
    return "" if x is None else f"{x:.3f}"


def _rate(x: dict[str, Any]) -> str:
    return f"{x['value']:.3f} ({x['count']}/{x['of']})" if x.get("of") else "n/a"


def markdown(figures: dict[str, Any], command: str) -> list[str]:
    lines = [*suite_header("Query token cap: quality against encode latency", command, figures["machine"]),
             f"Bundle {figures['bundle']} (threshold {figures['threshold']:.4f}, {figures['threshold_source']}; "
             f"the model reads at most {figures['model_limit']} tokens). Incidents are stored at full length; only "
             f"the query is capped. Test split, hybrid scores; per-incident rates at the bundle's threshold with the "
             f"top {DEFAULT_TOP_K} shown. Encode: each query alone, the caps taking turns per query.", ""]
    for c in figures["corpora"]:
        t = c["tokens_per_incident"]
        lines += [f"## {c['corpus']} ({c['incidents']} incidents; tokens per incident: median {t['median']}, "
                  f"p90 {t['p90']}, max {t['max']})", "",
                  "| cap | queries cut | MRR | MRR vs uncapped (95 % CI) | recall@5 | ROC-AUC | false alarms per "
                  "incident | hit rate | encode p50 / p99 ms | p50 / uncapped |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in c["rows"]:
            e = r["encode"]
            lines.append(f"| {r['cap'] or 'none (' + str(r['tokens_read']) + ')'} | {r['queries_cut']:.0%} | "
                         f"{r['hybrid_mrr']:.3f} | {_value(r['mrr_vs_uncapped']) or '-'} | "
                         f"{r['hybrid_recall@5']:.3f} | {r['hybrid_roc_auc']:.3f} | {_rate(r['false_alarm_rate'])} | "
                         f"{_rate(r['hit_rate'])} | {e['p50_ms']} / {e['p99_ms']} | {e['p50_ratio_to_uncapped']} |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: a MiniLM bundle built from its "
                        "package, said in the output)")
    parser.add_argument("--data", default="sample,seamonkey", help="labelled corpora: sample, seamonkey, a file")
    parser.add_argument("--sample-size", type=int, default=2000, help="incidents of the generated sample")
    parser.add_argument("--caps", default="32,64,128,256", help="token caps to compare with the model's limit")
    parser.add_argument("--timed-queries", type=int, default=300, help="queries timed per corpus and cap")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    caps = sorted({int(c) for c in args.caps.split(",") if c.strip()})
    if any(c < 2 for c in caps):
        parser.error("every cap must be at least 2 tokens")
    command = "python -m benchmarks.query_tokens " + " ".join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="query-tokens-") as tmp:
        bundle = bundle_or_minilm(args.bundle, Path(tmp))
        run_suite(bundle, [n.strip() for n in args.data.split(",") if n.strip()], caps, args.out, command.strip(),
                  sample_size=args.sample_size, timed_queries=args.timed_queries, n_boot=args.bootstrap)


def run_suite(bundle: Bundle, data: list[str], caps: list[int], out: Path, command: str, sample_size: int = 2000,
              timed_queries: int = 300, n_boot: int = 1000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="query-tokens-") as tmp:
        corpora = [run_corpus(bundle, load_labelled(name, n=sample_size), caps, n_boot, timed_queries, Path(tmp))
                   for name in data]
    figures = {"machine": cpu_facts(), "bundle": bundle.model_version, "threshold": bundle.threshold,
               "threshold_source": bundle.threshold_source, "model_limit": bundle.max_seq_length,
               "corpora": corpora}
    write_suite(out, "query-tokens", figures, markdown(figures, command))
    return figures

if __name__ == "__main__":
    main()
