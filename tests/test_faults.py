"""Fault injection on real processes: a real `incident-sim serve` (small model, a few hundred incidents) takes
creates, updates and deletes (single and bulk) while it rebuilds, switches models and rolls back, and is
SIGKILLed at random points in each phase (bulk pushes, a rebuild, inside the switch, inside a rollback, a
`publish` next to it). After every restart:
* every write acknowledged with a 2xx is there with its latest content, every acknowledged delete is absent
  (a write in flight at the kill may land or not: whatever it did must then stay);
* the model and index that serve belong together, and a pushed incident is found by its own text;
* no half-built index version or staging bundle is left, and every pointer file is readable.

`.ci/run` runs INCIDENT_SIM_FAULT_KILLS (default 8) kills; the long run (`INCIDENT_SIM_FAULT_KILLS=60
INCIDENT_SIM_FAULT_REPORT=benchmarks/results/faults pytest tests/test_faults.py`) writes its figures."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from test_hotswap import bundle_b, registry_settings  # noqa: F401 (fixtures)

from conftest import ADMIN_KEY, free_port, wait_for_http
from indexing.bundle import Bundle, load_bundle
from indexing.registry import BundleRegistry
from service.settings import Settings
from training.calibrate import write_calibrated_bundle

ROOT = Path(__file__).resolve().parents[1]
KILLS = int(os.environ.get("INCIDENT_SIM_FAULT_KILLS", "8"))
REPORT = os.environ.get("INCIDENT_SIM_FAULT_REPORT")
PHASES = ("bulk", "rebuild", "switch", "rollback", "publish", "second")
# a second process started beside the live service on its data directory: refused, changing nothing on disk
SECOND_PROCESSES = (("doctor",), ("index", "--input", "{incidents}"), ("serve", "--port", "1"),
                    ("models", "activate", "{other}"), ("models", "compact"), ("models", "rollback"),
                    ("sync", "servicenow", "--instance", "http://127.0.0.1:9"))
SYNC_CREDENTIALS = {"INCIDENT_SIM_SERVICENOW_USER": "sync", "INCIDENT_SIM_SERVICENOW_PASSWORD": "not-used-here"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
GONE = None  # the expected state of a deleted incident


class Ledger:
    """What the service acknowledged: number -> latest short_description (GONE after a delete). A write whose
    answer never came (the kill) is `uncertain`: either its old or its new state is allowed, once."""

    def __init__(self) -> None:
        self.expected: dict[str, str | None] = {}
        self.uncertain: dict[str, set[str | None]] = {}
        self.lock = threading.Lock()
        self.acknowledged = 0

    def begin(self, number: str, new: str | None) -> None:
        with self.lock:
            allowed = self.uncertain.setdefault(number, set())
            allowed.add(self.expected.get(number, GONE))
            allowed.add(new)

    def ack(self, number: str, new: str | None) -> None:
        with self.lock:
            self.expected[number] = new
            self.uncertain.pop(number, None)
            self.acknowledged += 1


class Writer(threading.Thread):
    """Creates, updates and deletes through the API until the server dies (bounded count)."""

    def __init__(self, url: str, ledger: Ledger, rng: random.Random, round_no: int) -> None:
        super().__init__(daemon=True)
        self.url, self.ledger, self.rng, self.round_no = url, ledger, rng, round_no
        self.stop = threading.Event()

    def text(self, number: str) -> str:
        return f"{number} fault round {self.round_no} token{self.rng.randrange(10**9)} gateway relay"

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers=ADMIN, timeout=30) as client:
            for i in range(400):
                if self.stop.is_set():
                    return
                live = [n for n, v in self.ledger.expected.items() if v is not GONE]
                op = self.rng.choice(["create", "create", "update", "delete", "bulk"]) if live else "create"
                try:
                    if op == "bulk":
                        items = []
                        for _ in range(10):
                            number = (self.rng.choice(live) if self.rng.random() < 0.5
                                      else f"INC8{self.round_no:03d}{i:03d}{len(items):02d}")
                            if any(it["number"] == number for it in items):
                                continue
                            items.append({"number": number, "short_description": self.text(number)})
                        for it in items:
                            self.ledger.begin(it["number"], it["short_description"])
                        r = client.post("/incidents/bulk", json={"incidents": items})
                        if r.status_code == 200:
                            for it, res in zip(items, r.json()["results"], strict=True):
                                if res["status"] in ("created", "updated"):
                                    self.ledger.ack(it["number"], it["short_description"])
                    elif op == "delete":
                        number = self.rng.choice(live)
                        self.ledger.begin(number, GONE)
                        r = client.delete(f"/incidents/{number}")
                        if r.status_code == 204:
                            self.ledger.ack(number, GONE)
                    else:
                        number = self.rng.choice(live) if op == "update" else f"INC9{self.round_no:03d}{i:04d}"
                        text = self.text(number)
                        self.ledger.begin(number, text)
                        r = client.put(f"/incidents/{number}", json={"short_description": text})
                        if r.status_code in (200, 201):
                            self.ledger.ack(number, text)
                except httpx.HTTPError:
                    return  # the server is gone: this write's answer never came (it stays uncertain)
                time.sleep(self.rng.uniform(0.0, 0.02))


class Service:
    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(settings.data_dir), "HF_HUB_OFFLINE": "1",
                    "INCIDENT_SIM_API_KEYS": json.dumps([{"name": "ops", "key": ADMIN_KEY, "scopes": ["admin"]}]),
                    "INCIDENT_SIM_REBUILD_PAGE_SIZE": "16", "INCIDENT_SIM_LOG_FORMAT": "text",
                    "INCIDENT_SIM_FAILPOINTS": "switch.between_pointers=0.3,rollback.catch_up=0.3"}
        self.env.pop("INCIDENT_SIM_BUNDLE_PATH", None)
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0

    def start(self, ready_path: str = "/readyz") -> None:
        """Start and wait until `ready_path` answers 200 (/healthz: a start that may come up not ready)."""
        port = free_port()
        log = self.tmp / f"serve-{self.starts}.log"
        self.starts += 1
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=ROOT,
                                     env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{self.url}{ready_path}", self.proc, log, timeout=120)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_cli(service: Service, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> \
        subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=ROOT, env={**service.env, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)


def shard_files(settings: Settings) -> set[str]:
    """Every file of every index version's shard: what a refused second opener used to delete."""
    base = settings.edge_index_dir
    found: set[str] = set()
    for root, _dirs, files in os.walk(base):  # the live service creates and removes files meanwhile: no raise
        rel = Path(root).relative_to(base)
        if "shard" in rel.parts:
            found.update(str(rel / f) for f in files)
    return found


def second_process(service: Service, settings: Settings, args: tuple[str, ...]) -> None:
    """Run one second process beside the live service: it must be refused with one clear line (doctor: report
    read-only) and leave every shard file of the live index in place."""
    before = shard_files(settings)
    done = run_cli(service, *args, env=SYNC_CREDENTIALS, timeout=120)
    text = done.stdout + done.stderr
    assert "Traceback" not in text and "WouldBlock" not in text, (args, text)
    if args[0] == "doctor":
        assert "in use by another process" in text, text
    else:
        assert done.returncode == 2, (args, text)
        assert "held by another process (pid" in text or "open in another process (pid" in text, (args, text)
    base = settings.edge_index_dir
    missing = {f for f in before - shard_files(settings) if ("tracker" in f or "mutable_id" in f)
               and (base / Path(f).parts[0] / Path(f).parts[1]).is_dir()}  # the live service may drop a version
    assert not missing, (args, sorted(missing)[:5])


def other_model(client: httpx.Client, versions: list[str]) -> str:
    serving = client.get("/readyz").json()["model_version"]
    return next(v for v in versions if v != serving)


def wait_state(client: httpx.Client, until: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get("/admin/models/rebuild").json()
        if status["state"] != "building" or time.monotonic() > deadline:
            assert status["state"] == until, status
            return status
        time.sleep(0.1)


def check_after_restart(service: Service, settings: Settings, ledger: Ledger, rng: random.Random) -> dict[str, int]:
    lost = 0
    with httpx.Client(base_url=service.url, headers=ADMIN, timeout=30) as client:
        ready = client.get("/readyz").json()
        assert ready["ready"], ready
        # the index that serves holds vectors of the encoder that serves (a calibration-only bundle shares it)
        meta_file = settings.edge_index_dir / "versions" / ready["index_version"] / "index.json"
        meta = json.loads((meta_file if meta_file.is_file() else settings.edge_index_dir / "index.json").read_text())
        assert meta["index_version"] == ready["index_version"]
        serving = load_bundle(settings.bundles_dir / ready["model_version"], verify=False)
        assert meta["encoder_id"] == serving.encoder_id, (meta, ready)
        for number in sorted(set(ledger.expected) | set(ledger.uncertain)):
            r = client.get(f"/incidents/{number}")
            assert r.status_code in (200, 404), r.text
            state = r.json()["incident"]["short_description"] if r.status_code == 200 else GONE
            if number in ledger.uncertain:
                assert state in ledger.uncertain[number], (number, state, ledger.uncertain[number])
                ledger.expected[number] = state  # what the service did with it must now stay
                ledger.uncertain.pop(number)
            elif state != ledger.expected.get(number, GONE):
                lost += 1
        live = [n for n, v in ledger.expected.items() if v is not GONE]
        if live:
            number = rng.choice(live)
            body = client.post("/similar", json={"text": ledger.expected[number], "top_k": 1}).json()
            assert body["results"][0]["number"] == number, (number, body)
            assert body["index_version"] == ready["index_version"]
    versions = settings.edge_index_dir / "versions"
    building = [d.name for d in versions.iterdir() if (d / "BUILDING").exists()] if versions.is_dir() else []
    assert not building, f"half-built versions left after restart: {building}"
    leftovers = [p.name for p in settings.bundles_dir.iterdir() if p.name.startswith((".staging-", ".publish-"))]
    assert not leftovers, leftovers
    for pointer in (settings.bundles_dir / "ACTIVE.json", settings.edge_index_dir / "ACTIVE.json"):
        if pointer.exists():
            json.loads(pointer.read_text())
    return {"lost": lost}


def post_quietly(url: str, path: str) -> None:
    try:
        httpx.post(f"{url}{path}", headers=ADMIN, timeout=30)
    except httpx.HTTPError:
        pass  # killed while it ran: that is the point


def run_round(phase: str, service: Service, ledger: Ledger, rng: random.Random, round_no: int,
              models: list[str], jobs: list[Path], settings: Settings) -> str:
    """Drive one phase with writes going on, and SIGKILL the server at a random point in it. Returns where the
    kill landed (the rebuild state seen last)."""
    writer = Writer(service.url, ledger, rng, round_no)
    writer.start()
    landed = phase
    with httpx.Client(base_url=service.url, headers=ADMIN, timeout=30) as client:
        try:
            if phase == "bulk":
                time.sleep(rng.uniform(0.2, 2.0))
            elif phase == "rebuild":
                r = client.post("/admin/models/activate", json={"model_version": other_model(client, models)})
                assert r.status_code == 202, r.text
                time.sleep(rng.uniform(0.2, 3.0))
                landed = f"rebuild:{client.get('/admin/models/rebuild').json()['state']}"
            elif phase == "switch":
                r = client.post("/admin/models/activate", json={"model_version": other_model(client, models)})
                assert r.status_code == 202, r.text
                deadline = time.monotonic() + 120
                while (s := client.get("/admin/models/rebuild").json())["state"] == "building" and \
                        s["done"] < s["total"] and time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.6))  # the copy is done: verification, then the switch (0.3 s pause)
                landed = f"switch:{client.get('/admin/models/rebuild').json()['state']}"
            elif phase == "rollback":
                if sum(client.get("/admin/models").json()["index_versions"].values()) < 2:  # nothing to go back to
                    r = client.post("/admin/models/activate", json={"model_version": other_model(client, models)})
                    assert r.status_code == 202, r.text
                    wait_state(client, "switched")
                threading.Thread(target=post_quietly, args=(service.url, "/admin/models/rollback"), daemon=True).start()
                time.sleep(rng.uniform(0.0, 0.6))
                landed = f"rollback:{client.get('/admin/models/rebuild').json()['state']}"
            elif phase == "publish":
                job = jobs.pop()
                publish = subprocess.Popen([sys.executable, "-m", "service.cli", "publish", str(job)], cwd=ROOT,
                                           env=service.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0.3, 2.5))
                publish.send_signal(signal.SIGKILL)
                publish.wait(timeout=30)
                landed = f"publish:{'finished' if publish.returncode == 0 else 'killed'}"
            elif phase == "second":
                if rng.random() < 0.5:  # half of them beside a rebuild in flight
                    r = client.post("/admin/models/activate", json={"model_version": other_model(client, models)})
                    assert r.status_code == 202, r.text
                incidents = service.tmp / "second.jsonl"
                incidents.write_text(json.dumps({"number": "INC0770001", "short_description": "offline"}) + "\n")
                template = SECOND_PROCESSES[(round_no // len(PHASES)) % len(SECOND_PROCESSES)]
                args = tuple(a.format(incidents=incidents, other=other_model(client, models)) for a in template)
                second_process(service, settings, args)
                landed = f"second:{args[0]}{' ' + args[1] if args[0] == 'models' else ''}"
        except httpx.HTTPError:
            pass
    service.kill()
    writer.stop.set()
    writer.join(timeout=30)
    return landed


def test_sigkill_at_random_points_loses_no_acknowledged_write(registry_settings: Settings,  # noqa: F811
                                                              minilm_bundle: Bundle, bundle_b: Bundle,  # noqa: F811
                                                              tmp_path: Path) -> None:
    BundleRegistry(registry_settings.bundles_dir).publish(bundle_b.path)
    models = [minilm_bundle.model_version, bundle_b.model_version]
    jobs = []
    for i in range(sum(1 for k in range(KILLS) if PHASES[k % len(PHASES)] == "publish")):
        threshold = {"value": 0.5, "source": "calibrated", "unit": "incident_false_alarm", "target": 0.05,
                     "confidence": 0.95, "calibrated_on": "faults"}
        path = write_calibrated_bundle(minilm_bundle, tmp_path / f"job-{i}", threshold, {"corpus": "faults"})
        jobs.append(path)
        time.sleep(1.01)  # calibrated versions are stamped to the second
    rng = random.Random(int(os.environ.get("INCIDENT_SIM_FAULT_SEED", "20261123")))
    ledger = Ledger()
    service = Service(registry_settings, tmp_path)
    kills: Counter[str] = Counter()
    landed: Counter[str] = Counter()
    restarts_served = lost = 0
    started = time.monotonic()
    try:
        service.start()
        for k in range(KILLS):
            phase = PHASES[k % len(PHASES)]
            landed[run_round(phase, service, ledger, rng, k, models, jobs, registry_settings)] += 1
            kills[phase] += 1
            service.start()  # raises if the service cannot serve again
            restarts_served += 1
            lost += check_after_restart(service, registry_settings, ledger, rng)["lost"]
            assert lost == 0, f"acknowledged writes lost after kill {k} ({phase})"
        bundles = registry_settings.bundles_dir.iterdir()  # directories: each has a <version>.manifest.sha256 beside it
        for job in (p for p in bundles if p.is_dir() and p.name.startswith("minilm")):
            load_bundle(job)  # every bundle in the registry is complete and verifies
    finally:
        service.stop()
    figures = {"kills": KILLS, "kills_per_phase": dict(kills), "where_kills_landed": dict(landed),
               "writes_acknowledged": ledger.acknowledged, "writes_lost": lost, "restarts_that_served": restarts_served,
               "incidents_tracked": len(ledger.expected), "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(figures, indent=2))
    assert ledger.acknowledged > 10 * KILLS and restarts_served == KILLS and set(kills) <= set(PHASES)
    if REPORT:
        out = Path(REPORT)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n")
        rows = "\n".join(f"| {p} | {n} |" for p, n in sorted(kills.items()))
        where = "\n".join(f"| {p} | {n} |" for p, n in sorted(landed.items()))
        out.with_suffix(".md").write_text(
            f"# Fault injection: SIGKILL at random points\n\n`INCIDENT_SIM_FAULT_KILLS={KILLS} "
            f"INCIDENT_SIM_FAULT_REPORT={REPORT} .venv/bin/python -m pytest tests/test_faults.py`\n\n"
            f"- kills: {KILLS}; restarts that served: {restarts_served}\n"
            f"- writes acknowledged: {ledger.acknowledged}; writes lost: **{lost}**\n"
            f"- incidents tracked: {len(ledger.expected)}; run time {figures['seconds']} s\n\n"
            f"| phase | kills |\n|---|---|\n{rows}\n\n| where the kill landed | kills |\n|---|---|\n{where}\n")
