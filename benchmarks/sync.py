"""A full then an incremental ServiceNow sync, timed, through the real command against the fake Table API.

    python -m benchmarks.sync --bundle var/bundles/<version> [--incidents 5000] [--page-size 200]

The fake (tests/fake_servicenow.py) serves `--incidents` generated incidents on loopback; `incident-sim sync
servicenow` runs as a separate process into a fresh data directory (offline mode, the engine's write path), then
again, which must change nothing. Writes benchmarks/results/sync.json|md."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import cpu_facts, suite_header, write_suite

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_servicenow import FakeServiceNow  # noqa: E402  (a test double, shared with the tests)

SUMMARY = re.compile(r"created (\d+), updated (\d+), unchanged (\d+), deleted (\d+), invalid (\d+), pages (\d+), "
                     r"requests (\d+), retries (\d+)")


def sync_once(url: str, env: dict[str, str], label: str, incidents: int) -> dict[str, object] | None:
    """One `incident-sim sync servicenow` as a separate process: its summary and wall time (None: it failed)."""
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "service.cli", "sync", "servicenow", "--instance", url], cwd=ROOT,
                            env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        print(result.stdout, result.stderr, file=sys.stderr)
        return None
    found = SUMMARY.search(result.stdout)
    assert found, result.stdout
    names = ("created", "updated", "unchanged", "deleted", "invalid", "pages", "requests", "retries")
    return {"run": label, "seconds": round(seconds, 1), **dict(zip(names, map(int, found.groups()), strict=True)),
            "incidents_per_s": round(incidents / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--token-budgets", default="1024",
                        help="comma-separated INCIDENT_SIM_ENCODER_TOKEN_BUDGET values, one full + incremental sync "
                             "each into a fresh data directory (0 = batches by count, the path before budgets)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    command = "python -m benchmarks.sync " + " ".join(argv if argv is not None else sys.argv[1:])
    runs = []
    budgets = [int(b) for b in args.token_budgets.split(",") if b]
    with FakeServiceNow(args.incidents, seed=29) as fake:
        for budget in budgets:
            with tempfile.TemporaryDirectory(prefix="sync-") as tmp:
                env = {**os.environ, "INCIDENT_SIM_DATA_DIR": tmp,
                       "INCIDENT_SIM_BUNDLE_PATH": str(args.bundle.resolve()),
                       "INCIDENT_SIM_SERVICENOW_USER": fake.user, "INCIDENT_SIM_SERVICENOW_PASSWORD": fake.password,
                       "INCIDENT_SIM_SYNC_PAGE_SIZE": str(args.page_size),
                       "INCIDENT_SIM_ENCODER_TOKEN_BUDGET": str(budget), "HF_HUB_OFFLINE": "1"}
                for label in ("full (fresh data directory)", "incremental (nothing changed)"):
                    run = sync_once(fake.url, env, label, args.incidents)
                    if run is None:
                        return 1
                    runs.append({"token_budget": budget, **run})
                    print(runs[-1], flush=True)
    machine = cpu_facts()
    lines = suite_header(f"ServiceNow sync of {args.incidents} incidents (fake Table API, offline mode)", command,
                         machine)
    lines += [f"Bundle: {args.bundle.name}; page size {args.page_size}; wall time of the whole command (start-up, "
              "encoding, writes, the deletions query) as a separate process.", "",
              "| token budget | run | seconds | incidents/s | created | updated | unchanged | deleted | invalid | "
              "pages | requests |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['token_budget']} | {r['run']} | {r['seconds']} | {r['incidents_per_s']} | {r['created']} | "
                     f"{r['updated']} | "
                     f"{r['unchanged']} | {r['deleted']} | {r['invalid']} | {r['pages']} | {r['requests']} |")
    write_suite(args.out, "sync", {"machine": machine, "command": command, "runs": runs}, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
