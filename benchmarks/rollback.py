"""How long a rollback takes and how long incident pushes wait during it, at several index sizes.

    python -m benchmarks.rollback --sizes 5000,50000 --writes 100
    python -m benchmarks.rollback --bundle DATA_DIR/bundles/<version> --sizes 1000

For each size, a throw-away data directory: that many sample incidents indexed with bundle A, then a switch
to bundle B (A's files with another max_seq_length, so another encoder id: the switch is a real rebuild that
re-embeds every incident), `--writes` pushes (half new, half updates) and 10 deletes on B, then a rollback
to A while one client keeps pushing single incidents, one at a time, the whole time. Recorded: the rollback's
seconds and `replayed`, its `stall_seconds` (the part under the write lock), and the latency of every push
made during it against pushes made with nothing else running (same process, same index, just before).
Then a restart and a second rollback, from a version opened from disk.

Without `--bundle` the bundle is all-MiniLM-L6-v2 from its registry package (built here, INT8).
Writes benchmarks/results/rollback.json|md."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import cpu_facts, suite_header, write_suite
from indexing.bundle import Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from indexing.indexer import index_into_catalog
from indexing.registry import BundleRegistry
from indexing.store.edge_catalog import EdgeCatalog
from service.engine import Engine
from service.settings import Settings
from service.versions.switcher import ModelSwitcher
from training.calibrate import write_calibrated_bundle
from training.data.sample import generate_incidents

logger = logging.getLogger(__name__)
THRESHOLD = {"value": 0.6, "source": "calibrated", "unit": "incident_false_alarm", "target": 0.05,
             "confidence": 0.95, "calibrated_on": "benchmark"}


def push(engine: Engine, incidents: list[Incident], writes: int, tag: str) -> None:
    new = [Incident(number=f"INC7{tag}{i:05d}", short_description=f"rollback benchmark {tag} write {i}")
           for i in range(writes // 2)]
    updated = [i.model_copy(update={"short_description": f"{i.short_description} ({tag} update)"})
               for i in incidents[: writes - len(new)]]
    engine.upsert_incidents(new + updated)
    for inc in incidents[writes : writes + 10]:
        engine.delete_incident(inc.number)


class Pusher:
    """One client pushing single new incidents back to back, recording each push's latency (ms)."""

    def __init__(self, engine: Engine, tag: str) -> None:
        self.engine, self.tag = engine, tag
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pusher-{tag}", daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            incident = Incident(number=f"INC8{self.tag}{i:06d}",
                                short_description=f"printer queue stuck on floor {i % 40} ({self.tag})")
            t0 = time.perf_counter()
            self.engine.upsert_incidents([incident])
            self.latencies_ms.append((time.perf_counter() - t0) * 1000)
            i += 1

    def __enter__(self) -> Pusher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def latency_figures(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"pushes": 0}
    a = np.asarray(ms)
    return {"pushes": len(ms), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(a.max()), 1)}


def rollback_under_pushes(engine: Engine, tag: str) -> dict[str, Any]:
    with Pusher(engine, f"{tag}q") as quiet:  # the same client with nothing else running, for the ratio
        time.sleep(5)
    with Pusher(engine, tag) as during:
        time.sleep(0.5)
        t0 = time.perf_counter()
        status = ModelSwitcher(engine).rollback()
        seconds = time.perf_counter() - t0
        time.sleep(0.5)
    assert status.state == "rolled_back", status
    figures = {"seconds": round(seconds, 2), "replayed": status.replayed, "stall_seconds": status.stall_seconds,
               "pushes_quiet": latency_figures(quiet.latencies_ms),
               "pushes_during": latency_figures(during.latencies_ms)}
    q, d = figures["pushes_quiet"], figures["pushes_during"]
    if q.get("pushes") and d.get("pushes"):
        figures["max_push_vs_quiet_p50"] = round(d["max_ms"] / q["p50_ms"], 1)
    return figures


def other_encoder(bundle: Bundle, where: Path) -> Bundle:
    """Bundle A's files under another max_seq_length: another encoder id, so switching to it re-embeds."""
    encoder = {**bundle.manifest["encoder"], "max_seq_length": max(32, bundle.max_seq_length // 2)}
    return load_bundle(write_calibrated_bundle(bundle, where, THRESHOLD, {"corpus": "benchmark"},
                                               extra={"encoder": encoder}))


def run_size(bundle_a: Bundle, size: int, writes: int) -> dict[str, Any]:
    incidents = [Incident.model_validate(r) for r in generate_incidents(size, seed=7)]
    figures: dict[str, Any] = {"incidents": size, "writes": writes, "deletes": 10}
    with tempfile.TemporaryDirectory(prefix="rollback-bench-") as tmp:
        data = Path(tmp)
        registry = BundleRegistry(data / "bundles")
        registry.publish(bundle_a.path, allow_uncalibrated=True)
        registry.set_active(bundle_a.model_version)
        bundle_b = other_encoder(bundle_a, data / "jobs")
        registry.publish(bundle_b.path)
        settings = Settings(data_dir=data, dev_mode=True)
        encoder = OnnxEncoder(bundle_a.encoder_path, bundle_a.tokenizer_path, bundle_a.max_seq_length)
        t0 = time.perf_counter()
        catalog = EdgeCatalog(settings.edge_index_dir)
        index_into_catalog(incidents, bundle_a, encoder, catalog)
        catalog.close()
        figures["index_seconds"] = round(time.perf_counter() - t0, 1)

        engine = Engine.from_settings(settings)
        t0 = time.perf_counter()
        assert ModelSwitcher(engine).activate(bundle_b.model_version, background=False).state == "switched"
        figures["switch_with_rebuild_seconds"] = round(time.perf_counter() - t0, 1)
        push(engine, incidents, writes, "a")
        figures["rollback_kept"] = rollback_under_pushes(engine, "k")

        assert ModelSwitcher(engine).activate(bundle_b.model_version, background=False).state == "switched"
        push(engine, incidents[200:], writes, "b")
        engine.close()
        engine = Engine.from_settings(settings)  # a restart: the previous version is on disk only
        figures["rollback_after_restart"] = rollback_under_pushes(engine, "r")
        engine.close()
    return figures


def minilm_bundle(where: Path) -> Bundle:
    from benchmarks.compaction import minilm_bundle as build

    return build(where)


def write_report(figures: dict[str, Any], out: Path, command: str) -> None:
    lines = suite_header("Rollback: its time, and how long pushes wait during it", command, figures["machine"])
    lines += [f"Bundle {figures['bundle']} (A) and the same files with another max_seq_length (B), so the switch "
              "to B and the rollback re-embed for real. One client pushes single incidents back to back during "
              "each rollback; `quiet` is the same client for 5 s just before, with nothing else running. Other "
              "work shared the 2 cores: " + figures.get("load", "none stated") + ".", "",
              "| incidents | index s | switch (rebuild) s | rollback | s | replayed | stall s (under the lock) | "
              "pushes during | push p50 / p99 / max ms during | quiet p50 / max ms | max vs quiet p50 |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in figures["runs"]:
        for key, label in (("rollback_kept", "previous version loaded"), ("rollback_after_restart",
                                                                          "after a restart")):
            r = run[key]
            d, q = r["pushes_during"], r["pushes_quiet"]
            lines.append(f"| {run['incidents']} | {run['index_seconds']} | {run['switch_with_rebuild_seconds']} | "
                         f"{label} | {r['seconds']} | {r['replayed']} | {r['stall_seconds']} | {d.get('pushes')} | "
                         f"{d.get('p50_ms')} / {d.get('p99_ms')} / {d.get('max_ms')} | "
                         f"{q.get('p50_ms')} / {q.get('max_ms')} | {r.get('max_push_vs_quiet_p50')} |")
    write_suite(out, "rollback", figures, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="bundle A (default: all-MiniLM-L6-v2 built here)")
    parser.add_argument("--sizes", default="5000,50000", help="comma-separated index sizes")
    parser.add_argument("--writes", type=int, default=100, help="pushes on B before each rollback")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--load", default="none stated", help="what else ran on the machine (for the report)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rollback-bundle-") as tmp:
        bundle_a = load_bundle(args.bundle) if args.bundle else minilm_bundle(Path(tmp))
        figures: dict[str, Any] = {"bundle": bundle_a.model_version, "machine": cpu_facts(), "runs": [],
                                   "load": args.load}
        for size in (int(s) for s in args.sizes.split(",")):
            figures["runs"].append(run_size(bundle_a, size, args.writes))
            logger.info("rollback at %d incidents: %s", size, json.dumps(figures["runs"][-1]))
    command = "python -m benchmarks.rollback " + (f"--bundle <{bundle_a.model_version}> " if args.bundle else "")
    write_report(figures, args.out, command + f"--sizes {args.sizes} --writes {args.writes}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
