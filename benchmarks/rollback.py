"""How long a model switch and a rollback take, with the previous version still loaded ("kept") and after a
restart (opened from disk), and how many writes the rollback replays.

    python -m benchmarks.rollback --bundle DATA_DIR/bundles/<version> --incidents 1000 --writes 100

Builds a throw-away data directory: `--incidents` sample incidents indexed with the bundle (model A), a
calibration-only copy of it as model B (same encoder, so the rebuild is a plain re-embed), then: switch to
B, push `--writes` incidents (half new, half updates) and delete 10, roll back (kept); switch to B again,
push again, restart, roll back (not kept). Writes benchmarks/results/rollback.json|md."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import cpu_facts
from indexing.bundle import load_bundle
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


def push(engine: Engine, incidents: list[Incident], writes: int, tag: str) -> None:
    new = [Incident(number=f"INC7{tag}{i:05d}", short_description=f"rollback benchmark {tag} write {i}")
           for i in range(writes // 2)]
    updated = [i.model_copy(update={"short_description": f"{i.short_description} ({tag} update)"})
               for i in incidents[: writes - len(new)]]
    engine.upsert_incidents(new + updated)
    for inc in incidents[writes : writes + 10]:
        engine.delete_incident(inc.number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    bundle_a = load_bundle(args.bundle)
    incidents = [Incident.model_validate(r) for r in generate_incidents(args.incidents, seed=7)]
    figures: dict[str, Any] = {"bundle": bundle_a.model_version, "incidents": args.incidents, "writes": args.writes,
                               "deletes": 10, "machine": cpu_facts()}
    with tempfile.TemporaryDirectory(prefix="rollback-bench-") as tmp:
        data = Path(tmp)
        registry = BundleRegistry(data / "bundles")
        registry.publish(bundle_a.path, allow_uncalibrated=True)
        registry.set_active(bundle_a.model_version)
        threshold = {"value": 0.6, "source": "calibrated", "unit": "incident_false_alarm", "target": 0.05,
                     "confidence": 0.95, "calibrated_on": "benchmark"}
        bundle_b = load_bundle(write_calibrated_bundle(bundle_a, data / "jobs", threshold, {"corpus": "benchmark"}))
        registry.publish(bundle_b.path)
        settings = Settings(data_dir=data, dev_mode=True)
        encoder = OnnxEncoder(bundle_a.encoder_path, bundle_a.tokenizer_path, bundle_a.max_seq_length)
        t0 = time.perf_counter()
        index_into_catalog(incidents, bundle_a, encoder, EdgeCatalog(settings.edge_index_dir))
        figures["index_seconds"] = round(time.perf_counter() - t0, 1)

        engine = Engine.from_settings(settings)
        switcher = ModelSwitcher(engine)
        t0 = time.perf_counter()
        assert switcher.activate(bundle_b.model_version, background=False).state == "switched"
        figures["switch_with_rebuild_seconds"] = round(time.perf_counter() - t0, 1)
        push(engine, incidents, args.writes, "a")
        t0 = time.perf_counter()
        status = switcher.rollback()
        figures["rollback_kept"] = {"seconds": round(time.perf_counter() - t0, 2), "replayed": status.replayed}

        assert switcher.activate(bundle_b.model_version, background=False).state == "switched"
        push(engine, incidents[200:], args.writes, "b")
        engine.close()
        engine = Engine.from_settings(settings)  # a restart: the previous version is on disk only
        t0 = time.perf_counter()
        status = ModelSwitcher(engine).rollback()
        figures["rollback_after_restart"] = {"seconds": round(time.perf_counter() - t0, 2),
                                             "replayed": status.replayed}
        engine.close()
    print(json.dumps(figures, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rollback.json").write_text(json.dumps(figures, indent=2) + "\n")
    m = figures["machine"]
    (args.out / "rollback.md").write_text(
        f"# Rollback timing\n\n`python -m benchmarks.rollback --bundle <{figures['bundle']}> --incidents "
        f"{args.incidents} --writes {args.writes}`\n\n"
        f"Machine: {m['cpu']}, {m['cores']} cores, AVX2 {m['avx2']}, AVX-512 VNNI {m['avx512_vnni']}\n\n"
        "| step | seconds | writes replayed |\n|---|---|---|\n"
        f"| index {args.incidents} incidents | {figures['index_seconds']} | |\n"
        f"| switch (rebuild + verify + switch) | {figures['switch_with_rebuild_seconds']} | |\n"
        f"| rollback, previous version kept loaded | {figures['rollback_kept']['seconds']} | "
        f"{figures['rollback_kept']['replayed']} |\n"
        f"| rollback after a restart (opened from disk) | {figures['rollback_after_restart']['seconds']} | "
        f"{figures['rollback_after_restart']['replayed']} |\n")


if __name__ == "__main__":
    main()
