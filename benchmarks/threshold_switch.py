"""A threshold-only switch (what live recalibration applies) against a rebuild, on the same index.

    python -m benchmarks.threshold_switch --incidents 300

A throw-away data directory: `--incidents` sample incidents indexed with all-MiniLM-L6-v2 INT8 (built here from
its registry package). Timed: writing and publishing a threshold-only bundle, the switch to it (on the serving
index, nothing re-embedded), its rollback, then activating a bundle with the same files but no threshold_only
mark (a rebuild that re-embeds every incident). Writes benchmarks/results/threshold-switch.json|md."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import cpu_facts, suite_header, write_suite
from benchmarks.rollback import THRESHOLD, minilm_bundle
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from indexing.indexer import index_into_catalog
from indexing.registry import BundleRegistry
from indexing.store.edge_catalog import EdgeCatalog
from service.engine import Engine
from service.flag.recalibrate import THRESHOLD_ONLY_KEY
from service.settings import Settings
from service.versions.switcher import ModelSwitcher
from training.calibrate import write_calibrated_bundle
from training.data.sample import generate_incidents


def measure(incidents: int, root: Path) -> dict[str, Any]:
    bundle = minilm_bundle(root / "build")
    registry = BundleRegistry(root / "data" / "bundles")
    registry.publish(bundle.path, allow_uncalibrated=True)
    registry.set_active(bundle.model_version)
    settings = Settings(data_dir=root / "data", dev_mode=True)
    catalog = EdgeCatalog(settings.edge_index_dir)
    rows = [Incident.model_validate(r) for r in generate_incidents(incidents, seed=7)]
    index_into_catalog(rows, bundle, OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length),
                       catalog)
    catalog.close()
    engine = Engine.from_settings(settings)
    switcher = ModelSwitcher(engine)
    t0 = time.perf_counter()
    only = write_calibrated_bundle(bundle, registry.root, THRESHOLD, {}, extra={THRESHOLD_ONLY_KEY: {
        "from": bundle.model_version}})
    registry.publish(only)
    t1 = time.perf_counter()
    switched = switcher.activate(only.name, background=False)
    t2 = time.perf_counter()
    switcher.rollback()
    t3 = time.perf_counter()
    time.sleep(1.1)  # bundle versions are stamped to the second
    plain = write_calibrated_bundle(bundle, registry.root, {**THRESHOLD, "value": 0.61}, {})
    registry.publish(plain)
    t4 = time.perf_counter()
    rebuilt = switcher.activate(plain.name, background=False)
    t5 = time.perf_counter()
    engine.close()
    return {"incidents": incidents, "bundle": bundle.model_version, "write_and_publish_s": round(t1 - t0, 3),
            "threshold_switch_s": round(t2 - t1, 3), "threshold_switch_state": switched.state,
            "rollback_s": round(t3 - t2, 3), "rebuild_s": round(t5 - t4, 2), "rebuild_state": rebuilt.state,
            "rebuild_vs_threshold_switch": round((t5 - t4) / max(t2 - t1, 1e-9), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threshold-switch-") as tmp:
        figures = {**measure(args.incidents, Path(tmp)), "machine": cpu_facts()}
    lines = suite_header("Threshold-only switch vs a rebuild, same index",
                         f"python -m benchmarks.threshold_switch --incidents {args.incidents}", figures["machine"])
    lines += [f"Bundle {figures['bundle']}, {args.incidents} sample incidents.", "",
              "| step | seconds |", "|---|---|",
              f"| write + publish the threshold-only bundle | {figures['write_and_publish_s']} |",
              f"| threshold-only switch ({figures['threshold_switch_state']}) | {figures['threshold_switch_s']} |",
              f"| its rollback | {figures['rollback_s']} |",
              f"| the same bundle without the mark: rebuild ({figures['rebuild_state']}) | {figures['rebuild_s']} |",
              "", f"Rebuild / threshold-only switch: {figures['rebuild_vs_threshold_switch']}x."]
    write_suite(args.out, "threshold-switch", figures, lines)


if __name__ == "__main__":
    main()
