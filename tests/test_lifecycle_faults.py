"""Fault injection on the index-version lifecycle with real processes (issue: "a protocol no ordinary operation
can break"). Each scenario runs a real `incident-sim serve` on a data directory, a client recording every 2xx
write (tests/test_faults.Ledger), then does what an operator might: a second process beside the live one,
pointers damaged by hand, a SIGKILL between two file writes of a switch, a full or read-only disk, a SIGKILL of
the parent while its optimizer child runs. After each: every acknowledged write is there with its latest
content, every acknowledged delete is absent, model and index belong together — or the service refuses writes
with a message that names the fix."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_faults import ADMIN, Ledger, Service, Writer, check_after_restart, run_cli, shard_files
from test_hotswap import bundle_b, registry_settings  # noqa: F401 (fixtures)

from indexing.bundle import Bundle
from indexing.registry import BundleRegistry
from service.settings import Settings


def start_unready(service: Service) -> None:
    """Start the service and wait for /healthz only: it may come up not ready (that is what is tested)."""
    service.start(ready_path="/healthz")


def version_dirs(settings: Settings) -> list[str]:
    root = settings.edge_index_dir / "versions"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def meta_of(settings: Settings, name: str) -> dict:
    """index.json of catalog version `name` (the legacy layout keeps it at the top of the index directory)."""
    base = settings.edge_index_dir
    return json.loads((base / "index.json" if name == "legacy" else base / "versions" / name / "index.json")
                      .read_text())


def served(service: Service) -> dict:
    return httpx.get(f"{service.url}/readyz", timeout=30).json()


def wait_state(service: Service, until: tuple[str, ...], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{service.url}/admin/models/rebuild", headers=ADMIN, timeout=30).json()
        if status["state"] in until:
            return status
        time.sleep(0.1)
    raise AssertionError(f"rebuild state never reached {until}: {status}")


@pytest.fixture()
def live(registry_settings: Settings, bundle_b: Bundle, tmp_path: Path) -> Iterator[Service]:  # noqa: F811
    BundleRegistry(registry_settings.bundles_dir).publish(bundle_b.path)
    service = Service(registry_settings, tmp_path)
    service.env["INCIDENT_SIM_FAILPOINTS"] = ""
    service.env["INCIDENT_SIM_COMPACT_AFTER_WRITES"] = "0"
    yield service
    service.stop()


def write_for(service: Service, ledger: Ledger, seconds: float, round_no: int) -> None:
    writer = Writer(service.url, ledger, random.Random(round_no), round_no)
    writer.start()
    time.sleep(seconds)
    writer.stop.set()
    writer.join(timeout=60)


# 1 -- a refused second process changes nothing --------------------------------------------------------------
def test_second_processes_beside_a_live_service_change_nothing(live: Service, registry_settings: Settings,  # noqa: F811
                                                               bundle_b: Bundle, tmp_path: Path) -> None:  # noqa: F811
    live.env["INCIDENT_SIM_FAILPOINTS"] = "optimize.child=4"  # the live service's rebuild stays in flight
    live.start()
    ledger = Ledger()
    write_for(live, ledger, 1.0, 0)
    r = httpx.post(f"{live.url}/admin/models/activate", json={"model_version": bundle_b.model_version},
                   headers=ADMIN, timeout=30)
    assert r.status_code == 202, r.text
    incidents = tmp_path / "more.jsonl"
    incidents.write_text(json.dumps({"number": "INC0770001", "short_description": "offline index"}) + "\n")
    writer = Writer(live.url, ledger, random.Random(1), 1)
    writer.start()
    attempts = [("doctor",), ("index", "--input", str(incidents)), ("serve", "--port", "1"),
                ("models", "activate", bundle_b.model_version), ("models", "compact"), ("models", "rollback"),
                ("sync", "servicenow", "--instance", "http://127.0.0.1:9")]
    before = shard_files(registry_settings)
    versions_before = version_dirs(registry_settings)
    credentials = {"INCIDENT_SIM_SERVICENOW_USER": "sync", "INCIDENT_SIM_SERVICENOW_PASSWORD": "not-used-here"}
    for args in attempts:
        done = run_cli(live, *args, env=credentials, timeout=120)
        text = done.stdout + done.stderr
        if args[0] == "doctor":  # read-only: it reports, never opens a shard
            assert "Traceback" not in text, text
            assert "in use by another process" in text, text
        else:
            assert done.returncode == 2, (args, text)
            assert "held by another process (pid" in text or "open in another process (pid" in text, (args, text)
            assert "Traceback" not in text and "WouldBlock" not in text, (args, text)
            assert len([line for line in done.stderr.splitlines() if line.startswith("error:")]) == 1, text
        missing = {f for f in before - shard_files(registry_settings) if "tracker" in f or "mutable_id" in f}
        assert not missing, (args, sorted(missing)[:5])
    assert set(versions_before) <= set(version_dirs(registry_settings))  # the second `serve` removed nothing
    writer.stop.set()
    writer.join(timeout=60)
    status = wait_state(live, ("switched", "failed"))
    assert status["state"] == "switched", status  # the rebuild survived the second processes
    acked = ledger.acknowledged
    write_for(live, ledger, 1.0, 2)
    assert ledger.acknowledged > acked, "writes failed after the refused second processes"
    live.kill()
    live.env["INCIDENT_SIM_FAILPOINTS"] = ""
    live.start()
    assert check_after_restart(live, registry_settings, ledger, random.Random(3))["lost"] == 0


# 2 -- damaged or deleted pointers ---------------------------------------------------------------------------
def _after_a_rollback(live: Service, ledger: Ledger, bundle: Bundle) -> None:
    live.start()
    write_for(live, ledger, 0.8, 10)
    r = httpx.post(f"{live.url}/admin/models/activate", json={"model_version": bundle.model_version},
                   headers=ADMIN, timeout=30)
    assert r.status_code == 202, r.text
    write_for(live, ledger, 0.5, 11)
    assert wait_state(live, ("switched", "failed"))["state"] == "switched"
    write_for(live, ledger, 0.8, 12)
    r = httpx.post(f"{live.url}/admin/models/rollback", headers=ADMIN, timeout=120)
    assert r.status_code == 200, r.text
    write_for(live, ledger, 0.8, 13)  # written after the rollback: only the version rolled back to has them
    live.kill()


@pytest.mark.parametrize("damage", ["both_truncated", "both_deleted", "pointer_deleted", "pointer_emptied",
                                    "registry_deleted"])
def test_damaged_pointers_never_serve_a_version_missing_writes(live: Service, registry_settings: Settings,  # noqa: F811
                                                              bundle_b: Bundle, damage: str) -> None:  # noqa: F811
    ledger = Ledger()
    _after_a_rollback(live, ledger, bundle_b)
    index_dir = registry_settings.edge_index_dir
    pointer, backup = index_dir / "ACTIVE.json", index_dir / "ACTIVE.json.bak"
    serving = json.loads(pointer.read_text())
    if damage == "both_truncated":
        for f in (pointer, backup):
            f.write_text(f.read_text()[:12])
    elif damage == "both_deleted":
        pointer.unlink()
        backup.unlink()
    elif damage == "pointer_deleted":
        pointer.unlink()
    elif damage == "pointer_emptied":
        pointer.write_text("")
    elif damage == "registry_deleted":
        (registry_settings.bundles_dir / "ACTIVE.json").unlink()
        (registry_settings.bundles_dir / "ACTIVE.json.bak").unlink()
    if damage.startswith("both"):
        # nothing serves until an operator names the version; `index` refuses to start a fresh one
        start_unready(live)
        ready = served(live)
        assert not ready["ready"] and ready["reason"] == "index_pointer_lost", ready
        assert "models recover" in ready["message"]
        r = httpx.put(f"{live.url}/incidents/INC0770009", json={"short_description": "refused"}, headers=ADMIN,
                      timeout=30)
        assert r.status_code == 503, r.text
        live.stop()
        incidents = Path(live.tmp) / "fresh.jsonl"
        incidents.write_text(json.dumps({"number": "INC0770010", "short_description": "fresh"}) + "\n")
        versions = version_dirs(registry_settings)
        refused = run_cli(live, "index", "--input", str(incidents))
        assert refused.returncode == 2 and "models recover" in refused.stderr, refused.stderr
        assert version_dirs(registry_settings) == versions  # no fresh version
        doctor = run_cli(live, "doctor")
        assert doctor.returncode == 1 and "models recover" in doctor.stdout, doctor.stdout
        recovered = run_cli(live, "models", "recover", serving["active"])
        assert recovered.returncode == 0, recovered.stderr
    live.start()
    ready = served(live)
    assert ready["ready"], ready
    expected = (meta_of(registry_settings, serving["active"])["index_version"], serving["model_version"])
    assert (ready["index_version"], ready["model_version"]) == expected
    assert check_after_restart(live, registry_settings, ledger, random.Random(4))["lost"] == 0


# 3 -- a SIGKILL between every pair of file writes of a switch --------------------------------------------------
WINDOWS = {  # failpoint: how the files look inside its window
    "switch.between_pointers": "registry moved, index pointer not yet",
    "registry_pointer.before_backup": "registry pointer written, its copy not yet",
    "index_pointer.before_backup": "index pointer written, its copy not yet",
}


@pytest.mark.parametrize("failpoint", sorted(WINDOWS))
def test_a_kill_inside_the_commit_never_pairs_a_model_with_another_index(
        live: Service, registry_settings: Settings, bundle_b: Bundle, failpoint: str) -> None:  # noqa: F811
    """bundle_b is a calibration-only copy (same encoder): exactly the case that served the new threshold on
    the old index before the index pointer named its bundle."""
    live.env["INCIDENT_SIM_FAILPOINTS"] = f"{failpoint}=3"
    live.start()
    ledger = Ledger()
    write_for(live, ledger, 0.5, 20)
    assert served(live)["ready"]
    r = httpx.post(f"{live.url}/admin/models/activate", json={"model_version": bundle_b.model_version},
                   headers=ADMIN, timeout=30)
    assert r.status_code == 202, r.text
    registry_pointer = registry_settings.bundles_dir / "ACTIVE.json"
    index_pointer = registry_settings.edge_index_dir / "ACTIVE.json"

    def inside() -> bool:
        registry = read_json(registry_pointer)
        registry_bak = read_json(registry_pointer.parent / "ACTIVE.json.bak")
        index = read_json(index_pointer)
        index_bak = read_json(index_pointer.parent / "ACTIVE.json.bak")
        moved = registry.get("active") == bundle_b.model_version
        index_moved = index.get("active") not in (None, "legacy")
        return {"switch.between_pointers": moved and registry_bak == registry and not index_moved,
                "registry_pointer.before_backup": moved and registry_bak.get("active") != bundle_b.model_version,
                "index_pointer.before_backup": index_moved and index_bak != index}[failpoint]

    deadline = time.monotonic() + 120
    while not inside():
        assert time.monotonic() < deadline, f"never reached the window: {WINDOWS[failpoint]}"
        time.sleep(0.01)
    live.kill()
    live.env["INCIDENT_SIM_FAILPOINTS"] = ""
    live.start()
    ready = served(live)
    pointer = read_json(index_pointer) or {"active": "legacy"}  # no pointer yet: the legacy layout serves
    meta = meta_of(registry_settings, pointer["active"])
    assert ready["index_version"] == meta["index_version"], (ready, pointer)
    assert meta["model_version"] == ready["model_version"], (meta["model_version"], ready)  # built together
    assert pointer.get("model_version", ready["model_version"]) == ready["model_version"]
    assert read_json(registry_pointer)["active"] == ready["model_version"]  # the registry followed
    if read_json(index_pointer):
        assert read_json(index_pointer.parent / "ACTIVE.json.bak") == pointer  # the copy caught up
    assert check_after_restart(live, registry_settings, ledger, random.Random(5))["lost"] == 0
    if ready["model_version"] == bundle_b.model_version:  # the switch had committed: rollback works
        r = httpx.post(f"{live.url}/admin/models/rollback", headers=ADMIN, timeout=120)
        assert r.status_code == 200, r.text


# 4 -- a full or read-only disk ---------------------------------------------------------------------------------
@pytest.fixture()
def small_disk(registry_settings: Settings) -> Iterator[Path | None]:  # noqa: F811
    """The index directory on a 1 GiB tmpfs of its own (None where this machine cannot mount one)."""
    index_dir = registry_settings.edge_index_dir
    saved = index_dir.parent / "index-saved"
    shutil.move(index_dir, saved)
    index_dir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", str(index_dir)],
                             capture_output=True, check=False).returncode == 0
    for child in saved.iterdir():
        shutil.move(str(child), index_dir / child.name)
    yield index_dir if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(index_dir)], check=False)


def test_a_full_disk_is_503_and_the_process_lives(live: Service, registry_settings: Settings,  # noqa: F811
                                                   small_disk: Path | None) -> None:
    """With a tmpfs: filled to 0 bytes free. Without one: a reserve larger than the disk's free space (the same
    check, before any write reaches Qdrant Edge's memory maps)."""
    live.env["INCIDENT_SIM_MIN_FREE_DISK_MB"] = "8" if small_disk else str(10**9)
    start_unready(live)
    ledger = Ledger()
    if small_disk is not None:
        write_for(live, ledger, 0.5, 30)
        filler = small_disk / "filler"
        with filler.open("wb") as fh:  # fill the disk to the last byte
            try:
                while True:
                    fh.write(b"\0" * 2**20)
            except OSError:
                pass
        assert shutil.disk_usage(small_disk).free < 2**20
    r = httpx.put(f"{live.url}/incidents/INC0770020", json={"short_description": "disk full"}, headers=ADMIN,
                  timeout=30)
    assert r.status_code == 503, r.text
    assert "free" in r.json()["error"]["message"]
    ready = served(live)
    assert not ready["ready"] and ready["reason"] == "not_writable", ready
    r = httpx.post(f"{live.url}/admin/index/compact", headers=ADMIN, timeout=60)
    assert r.status_code == 503, r.text
    assert live.proc is not None and live.proc.poll() is None, "the process died"
    assert httpx.post(f"{live.url}/similar", json={"text": "vpn certificate"}, headers=ADMIN,
                      timeout=30).status_code == 200  # reads go on
    if small_disk is not None:
        (small_disk / "filler").unlink()
        r = httpx.put(f"{live.url}/incidents/INC0770021", json={"short_description": "disk freed"},
                      headers=ADMIN, timeout=30)
        assert r.status_code in (200, 201), r.text
        ledger.ack("INC0770021", "disk freed")
        live.kill()
        live.start()
        assert check_after_restart(live, registry_settings, ledger, random.Random(6))["lost"] == 0


def test_read_only_storage_is_503_not_500(live: Service, registry_settings: Settings,  # noqa: F811
                                          small_disk: Path | None) -> None:
    """The index directory read-only (a volume mounted read-only, a file system the kernel remounted read-only
    after I/O errors). A tmpfs cannot be remounted read-only while a process has files open for writing, so the
    service is stopped, the storage made read-only, and the service started on it."""
    if small_disk is None:
        pytest.skip("this machine cannot mount a tmpfs (needs root): read-only storage is not reachable here")
    live.start()
    ledger = Ledger()
    write_for(live, ledger, 0.5, 40)
    live.stop()
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=False).returncode == 0
    try:
        start_unready(live)
        ready = served(live)
        assert not ready["ready"] and ready["reason"] in ("not_writable", "store_unavailable"), ready
        r = httpx.put(f"{live.url}/incidents/INC0770030", json={"short_description": "read-only"}, headers=ADMIN,
                      timeout=30)
        assert r.status_code == 503, r.text
        r = httpx.post(f"{live.url}/admin/index/compact", headers=ADMIN, timeout=60)
        assert r.status_code == 503, r.text
        assert live.proc is not None and live.proc.poll() is None
        live.stop()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=False)
    live.start()
    assert check_after_restart(live, registry_settings, ledger, random.Random(7))["lost"] == 0


# 5 -- the optimizer child dies with its parent ------------------------------------------------------------------
def test_the_optimizer_child_dies_with_its_parent(live: Service, registry_settings: Settings,  # noqa: F811
                                                  bundle_b: Bundle) -> None:  # noqa: F811
    live.env["INCIDENT_SIM_FAILPOINTS"] = "optimize.child=60"
    live.start()
    r = httpx.post(f"{live.url}/admin/models/activate", json={"model_version": bundle_b.model_version},
                   headers=ADMIN, timeout=30)
    assert r.status_code == 202, r.text
    marker = str(registry_settings.edge_index_dir)

    def children() -> list[int]:
        found = subprocess.run(["pgrep", "-f", f"edge_optimize {marker}"], capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]

    deadline = time.monotonic() + 120
    while not children():
        assert time.monotonic() < deadline, "the optimizer child never started"
        time.sleep(0.05)
    live.kill()
    deadline = time.monotonic() + 10
    while children() and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = children()
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"optimizer children outlived their parent: {alive}"
    live.env["INCIDENT_SIM_FAILPOINTS"] = ""
    live.start()
    assert served(live)["ready"]
