"""The benchmark suite's own mechanisms: what its figures rest on must be right, or every figure is wrong.

- open-loop latency counts from when a request was due (queueing shows; no coordinated omission);
- generated vectors have the cosine to their source that the corpus promises;
- the per-stage breakdown read back from /metrics is the mean of what the service observed;
- an index built with int8 copies still answers exact cosines (rescored), and the graph settings apply."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

from benchmarks.corpus import median_nn_cosine, nearest_by_text, noisy_copies
from benchmarks.e2e import parse_stage_totals, stage_means
from benchmarks.latency import open_loop, run
from indexing.lexical import SparseVector
from indexing.store.base import IndexMeta, IndexPoint
from indexing.store.edge import EdgeStore, GraphConfig
from service.metrics import Metrics

SERVICE_S = 0.05


class SlowHandler(BaseHTTPRequestHandler):
    """Answers one request at a time (HTTPServer is single-threaded), each taking SERVICE_S."""

    def do_GET(self) -> None:  # /readyz
        self._answer({"status": "ready"})

    def do_POST(self) -> None:  # /similar
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(SERVICE_S)
        self._answer({"results": []})

    def _answer(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def slow_server():
    server = HTTPServer(("127.0.0.1", 0), SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_open_loop_counts_queueing_that_closed_loop_hides(slow_server: str) -> None:
    # 40 requests offered at 40/s to a server that answers 20/s: the last is due at ~1 s but answered at ~2 s;
    # a request that waited for a free worker still counts from its due time
    result = open_loop(slow_server, 40.0, 40, 5, workers=2)  # too few workers: most start late
    assert result["statuses"] == {200: 40}
    assert result["max_ms"] > 700, result  # queued behind the earlier ones, counted from its due time
    assert result["achieved_per_s"] < 25
    closed = run(slow_server, 20, 1, 5, 30, 0)
    assert closed["p50_ms"] < 4 * SERVICE_S * 1000  # one at a time: only the service time
    assert result["p50_ms"] > closed["p50_ms"] * 2


def test_open_loop_below_capacity_sees_only_service_time(slow_server: str) -> None:
    result = open_loop(slow_server, 5.0, 10, 5, workers=8)
    assert result["statuses"] == {200: 10}
    assert result["p99_ms"] < 4 * SERVICE_S * 1000, result


@pytest.mark.parametrize("cosine", [0.8, 0.95])
def test_generated_vectors_keep_the_promised_cosine_to_their_source(cosine: float) -> None:
    rng = np.random.default_rng(1)
    real = rng.standard_normal((50, 384)).astype(np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    copies = noisy_copies(real, 2000, cosine, seed=3)
    assert np.allclose(np.linalg.norm(copies, axis=1), 1.0, atol=1e-5)
    nearest = (copies @ real.T).max(axis=1)  # the source is the nearest real vector
    assert abs(float(np.mean(nearest)) - cosine) < 0.01


def test_text_sourced_copies_follow_the_nearest_real_text() -> None:
    """A generated vector is copied from the real incident whose text is nearest, so words and vectors agree."""
    from indexing.incidents import Incident
    from indexing.lexical import Analyzer

    def incident(n: int, short: str, description: str) -> Incident:
        return Incident(number=f"INC{n:07d}", short_description=short, description=description)

    references = [incident(1, "VPN tunnel drops", "the vpn client disconnects every hour"),
                  incident(2, "printer jam on floor 3", "paper jam, printer shows error 13"),
                  incident(3, "database tablespace full", "ORA-1652 unable to extend temp segment")]
    others = [incident(10, "printer error 13", "jam again on the floor 3 printer"),
              incident(11, "ORA-1652 on db-srv07", "temp segment cannot extend, tablespace full"),
              incident(12, "vpn disconnects", "client drops the tunnel")]
    analyzer = Analyzer.from_name("incident-v1+stem")
    assert nearest_by_text(analyzer, others, references, chunk=2).tolist() == [1, 2, 0]
    rng = np.random.default_rng(0)
    real = rng.standard_normal((3, 64)).astype(np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    copies = noisy_copies(real, 3, 0.95, seed=1, sources=np.array([1, 2, 0]))
    assert (copies @ real.T).argmax(axis=1).tolist() == [1, 2, 0]


def test_median_nearest_neighbour_cosine_ignores_self() -> None:
    v = np.eye(4, dtype=np.float32)
    v[1] = (v[0] + v[1]) / np.sqrt(2)
    assert median_nn_cosine(v) == pytest.approx(float(np.median([0.7071, 0.7071, 0.0, 0.0])), abs=1e-3)


def test_stage_breakdown_is_the_mean_of_what_the_service_observed() -> None:
    metrics = Metrics()
    metrics.stage_latency.labels(stage="encode").observe(0.5)
    before = parse_stage_totals(generate_latest(metrics.registry).decode())
    for seconds in (0.010, 0.020, 0.030):
        metrics.stage_latency.labels(stage="encode").observe(seconds)
    metrics.stage_latency.labels(stage="fetch").observe(0.004)
    means = stage_means(before, parse_stage_totals(generate_latest(metrics.registry).decode()))
    assert means == {"encode": 20.0, "fetch": 4.0}


def _meta(dim: int) -> IndexMeta:
    return IndexMeta(index_version="t", model_version="m", encoder_id="e", dim=dim, analyzer="en-stem", k1=1.2,
                     b=0.75, avgdl=10.0, created_at="2026-11-23T00:00:00+00:00")


@pytest.mark.parametrize("on_disk", [False, True])
def test_int8_index_answers_exact_cosines(tmp_path: Path, on_disk: bool) -> None:
    """4,000 x 768-d floats (12 MB) is above Qdrant's indexing threshold: optimize() builds the HNSW graph and
    the int8 copies, and the graph search goes through them; the scores must still be float32 cosines, also
    with the float32 originals left on disk (the 1M settings: int8 in RAM, rescored from disk)."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((4000, 768)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = EdgeStore(tmp_path / "int8", graph=GraphConfig(m=8, ef_construct=32, int8=True, vectors_on_disk=on_disk))
    store.create_index(_meta(768))
    store.upsert([IndexPoint(f"{i:08x}-0000-4000-8000-000000000000", vectors[i], SparseVector([1], [1.0]),
                             {"number": f"INC{i:07d}"}) for i in range(len(vectors))])
    store.optimize()
    try:
        for q in rng.standard_normal((10, 768)).astype(np.float32):
            q /= np.linalg.norm(q)
            exact = vectors @ q
            for h in store.search_dense(q, 5):  # rescored: the float32 cosine, not the int8 estimate
                assert h.score == pytest.approx(float(exact[int(h.point_id[:8], 16)]), abs=1e-5)
            assert [int(h.point_id[:8], 16) for h in store.search_dense(q, 5, exact=True)] == \
                list(np.argsort(-exact)[:5])
            some = [f"{i:08x}-0000-4000-8000-000000000000" for i in rng.choice(len(vectors), 40, replace=False)]
            for h in store.search_dense(q, 40, among=some):  # the hybrid search's completion call
                assert h.score == pytest.approx(float(exact[int(h.point_id[:8], 16)]), abs=1e-5)
    finally:
        store.close()
    config = json.loads((tmp_path / "int8" / "shard" / "edge_config.json").read_text())  # what the shard keeps
    dense = config["vectors"]["dense"]
    assert (dense["hnsw_config"]["m"], dense["hnsw_config"]["ef_construct"]) == (8, 32)
    assert dense["quantization_config"]["scalar"]["type"] == "int8"
    assert (dense.get("memory") == "cold") == on_disk


def test_onboarding_best_score_skips_the_incident_itself() -> None:
    from benchmarks.onboarding import best_other

    stored = np.eye(3, dtype=np.float32)
    stored[2] = [0.6, 0.8, 0.0]  # incident 2 is closest to incident 1, then 0
    best = best_other(stored, stored)
    assert best.tolist() == pytest.approx([0.6, 0.8, 0.8])  # never its own 1.0


def test_memory_breakdown_names_what_each_mapping_holds(tmp_path: Path) -> None:
    from benchmarks.memory import category, pss_by_category

    seg = "/d/index/v/shard/segments/9bd7c978-0e8f/"
    assert category(seg + "vector_storage-dense/matrix.dat") == "dense vectors"
    assert category(seg + "vector_index-dense/links_compressed.bin") == "dense graph"
    assert category(seg + "payload_index/a793-terms-map/point_to_values.bin") == "payload indexes"
    assert category("/d/index/v/shard/wal/open-15") == "wal"
    assert category("") == "anonymous"
    smaps = tmp_path / "smaps"
    smaps.write_text(f"7f00-7f10 r--s 00000000 fd:01 1 {seg}vector_storage-dense/matrix.dat\nPss:    2048 kB\n"
                     "7f10-7f20 rw-p 00000000 00:00 0\nPss:    1024 kB\n"
                     f"7f20-7f30 r--s 00000000 fd:01 2 {seg}vector_storage-dense/matrix.dat\nPss:    1024 kB\n")
    assert pss_by_category(smaps) == {"dense vectors": 3.0, "anonymous": 1.0}
    assert pss_by_category(tmp_path / "missing") == {}


def test_graph_specs_name_the_memory_variants() -> None:
    from benchmarks.scale import graphs_from
    from indexing.store.edge import GraphConfig

    assert graphs_from("16:100,16:100:int8-disk,8:32:int8") == [
        GraphConfig(16, 100), GraphConfig(16, 100, int8=True, vectors_on_disk=True), GraphConfig(8, 32, int8=True)]
    with pytest.raises(ValueError, match="int8-disk"):
        graphs_from("16:100:disk")
