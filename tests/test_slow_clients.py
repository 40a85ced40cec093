"""Slow and unauthenticated clients against a real `incident-sim serve` process over loopback: they never take
the in-flight slots of keyed traffic (authentication before a slot, a body-read deadline, a separate small budget
for the routes without a key)."""

from __future__ import annotations

import json
import os
import select
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import WRITE_KEY, free_port, running
from service.settings import Settings

MAX_IN_FLIGHT = 4
BODY_TIMEOUT_S = 3.0
QUERY = {"text": "VPN connection fails with certificate error since this morning", "top_k": 5}


class Trickler(threading.Thread):
    """A client that declares a body and sends it one byte every `interval` seconds (until answered)."""

    def __init__(self, port: int, path: str, extra_headers: str = "", declared: int = 1000,
                 interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.extra, self.declared, self.interval = port, path, extra_headers, declared, interval
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.response = b""
        self.answered_after: float | None = None

    @property
    def status(self) -> int | None:
        line = self.response.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) > 1 and line[1].isdigit() else None

    def run(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            sock.sendall(f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {self.declared}\r\n{self.extra}\r\n".encode())
            self.connected.set()
            start = time.monotonic()
            sent = 0
            while not self.stop.is_set() and sent < self.declared:
                readable, _, _ = select.select([sock], [], [], self.interval)
                if readable:
                    self.answered_after = time.monotonic() - start
                    sock.settimeout(2)
                    try:
                        while chunk := sock.recv(65536):
                            self.response += chunk
                    except OSError:
                        pass
                    return
                try:
                    sock.sendall(b" ")
                except OSError:
                    return
                sent += 1
        finally:
            sock.close()


@pytest.fixture()
def served(writable_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    port = free_port()
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(writable_settings.data_dir),
           "INCIDENT_SIM_BUNDLE_PATH": str(writable_settings.bundle_path),
           "INCIDENT_SIM_API_KEYS": json.dumps([{"name": "servicenow", "key": WRITE_KEY,
                                                 "scopes": ["query", "write"]}]),
           "INCIDENT_SIM_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT), "INCIDENT_SIM_MAX_IN_FLIGHT_UNAUTHENTICATED": "2",
           "INCIDENT_SIM_BODY_READ_TIMEOUT_S": str(BODY_TIMEOUT_S), "INCIDENT_SIM_ENCODER_THREADS": "1"}
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with running([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], log, f"{url}/readyz", env=env):
        yield url, port, log


def keyed_latencies(client: httpx.Client, n: int) -> tuple[list[float], Counter[int]]:
    latencies, statuses = [], Counter[int]()
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.post("/similar", json=QUERY)
        latencies.append(time.perf_counter() - t0)
        statuses[r.status_code] += 1
    return latencies, statuses


def summary(latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    return f"median {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)})"


def test_slow_unauthenticated_bodies_do_not_lock_out_keyed_clients(served: tuple[str, int, Path]) -> None:
    url, port, _ = served
    with httpx.Client(base_url=url, headers={"X-API-Key": WRITE_KEY}, timeout=30) as client:
        keyed_latencies(client, 5)  # warm-up
        baseline, _ = keyed_latencies(client, 20)
        # 2x the in-flight limit of slow bodies without a key to a keyed route, and as many to an unknown path
        # (no key needed there: its body is read before a slot, within the deadline)
        slow = [Trickler(port, "/similar") for _ in range(2 * MAX_IN_FLIGHT)]
        slow += [Trickler(port, "/nowhere") for _ in range(2 * MAX_IN_FLIGHT)]
        for t in slow:
            t.start()
        for t in slow:
            assert t.connected.wait(10)
        time.sleep(1.0)  # they are all trickling now
        under_attack, statuses = keyed_latencies(client, 20)
        for t in slow:  # each ends when answered: at once (401) or at the body deadline (408)
            t.join(timeout=BODY_TIMEOUT_S + 10)
            t.stop.set()
    print(f"\nkeyed /similar alone: {summary(baseline)}; with {len(slow)} slow unauthenticated bodies: "
          f"{summary(under_attack)}")
    assert statuses == Counter({200: 20}), statuses
    assert statistics.median(under_attack) <= 3 * statistics.median(baseline) + 0.1
    # the keyed route's slow clients were refused at once, without their body; the unknown path's after the deadline
    assert [t.status for t in slow[:2 * MAX_IN_FLIGHT]] == [401] * (2 * MAX_IN_FLIGHT)
    assert all(t.answered_after is not None and t.answered_after < 1.0 for t in slow[:2 * MAX_IN_FLIGHT])
    assert {t.status for t in slow[2 * MAX_IN_FLIGHT:]} == {408}


def test_a_keyed_client_trickling_its_body_gets_408_at_the_deadline(served: tuple[str, int, Path]) -> None:
    url, port, log = served
    slow = [Trickler(port, "/similar", f"X-API-Key: {WRITE_KEY}\r\n") for _ in range(2 * MAX_IN_FLIGHT)]
    for t in slow:
        t.start()
    for t in slow:
        assert t.connected.wait(10)
    time.sleep(0.5)
    # while they trickle, they hold no slot: a keyed request is served
    r = httpx.post(f"{url}/similar", json=QUERY, headers={"X-API-Key": WRITE_KEY}, timeout=30)
    assert r.status_code == 200, r.text
    for t in slow:
        t.join(timeout=BODY_TIMEOUT_S + 10)
    assert {t.status for t in slow} == {408}
    assert all(t.answered_after is not None and BODY_TIMEOUT_S - 0.5 <= t.answered_after <= BODY_TIMEOUT_S + 2
               for t in slow)
    body = json.loads(slow[0].response.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_timeout"


def test_probes_have_their_own_budget(served: tuple[str, int, Path]) -> None:
    url, _, _ = served
    probe_statuses: Counter[int] = Counter()

    def probe(path: str) -> None:
        probe_statuses[httpx.get(f"{url}{path}", timeout=30).status_code] += 1

    with httpx.Client(base_url=url, headers={"X-API-Key": WRITE_KEY}, timeout=30) as client, \
            ThreadPoolExecutor(24) as pool:
        futures = [pool.submit(probe, path) for path in ("/metrics", "/readyz") * 60]
        _, statuses = keyed_latencies(client, 10)
        for f in futures:
            f.result()
    assert statuses == Counter({200: 10}), statuses
    assert set(probe_statuses) <= {200, 429} and probe_statuses[429] > 0, probe_statuses


def test_metrics_slash_redirect_is_relative(served: tuple[str, int, Path]) -> None:
    url, _, _ = served
    r = httpx.get(f"{url}/metrics/?x=1", headers={"Host": "evil.example"})
    assert r.status_code == 307 and r.headers["location"] == "/metrics?x=1"
    r = httpx.get(f"{url}//evil.example/", headers={"Host": "evil.example"})
    assert r.status_code == 404
