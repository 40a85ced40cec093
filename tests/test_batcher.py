"""The encode micro-batcher (indexing/batcher.py): each caller gets its own vector, equal to encoding it alone
within the bundle's parity bar; concurrent queries really share runs; errors reach every caller; one request
alone never waits for the window; the engine answers the same through it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from indexing.batcher import BatchingEncoder
from indexing.bundle import PARITY_MEAN_BAR, PARITY_MIN_BAR
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from service.engine import Engine, SimilarQuery
from service.settings import Settings


def test_each_caller_gets_its_own_vector_within_the_parity_bar(encoder: OnnxEncoder,
                                                               incidents: list[Incident]) -> None:
    texts: list[str] = []
    kept: list[np.ndarray] = []
    for incident in incidents:  # distinct texts: the sample holds duplicates on purpose
        vector = encoder.encode_one(incident.text())[0]
        if all(float(vector @ other) < 0.9 for other in kept):
            texts.append(incident.text())
            kept.append(vector)
        if len(texts) == 48:
            break
    assert len(texts) >= 32
    alone = np.stack(kept)
    batcher = BatchingEncoder(encoder, window_s=0.005, max_batch=16)
    start = threading.Barrier(16)

    def ask(k: int) -> np.ndarray:
        start.wait() if k < 16 else None
        return batcher.encode_one(texts[k])[0]

    with ThreadPoolExecutor(16) as pool:
        together = np.stack(list(pool.map(ask, range(len(texts)))))
    batcher.close()
    assert batcher.encoded == len(texts) and batcher.batches < len(texts) / 2, (batcher.batches, batcher.encoded)
    cosines = np.sum(alone * together, axis=1)
    assert cosines.mean() >= PARITY_MEAN_BAR and cosines.min() >= PARITY_MIN_BAR, cosines
    # and it is *its* vector: closest to its own text's among all of them
    assert list(np.argmax(together @ alone.T, axis=1)) == list(range(len(texts)))


def test_an_encoder_error_reaches_every_caller_of_the_batch(encoder: OnnxEncoder) -> None:
    class Broken:
        def encode(self, texts: list[str], batch_size: int = 32) -> None:
            time.sleep(0.05)
            raise RuntimeError("onnxruntime: out of memory")

    batcher = BatchingEncoder(Broken(), window_s=0.0)  # type: ignore[arg-type]
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher.encode_one, f"query {k}") for k in range(4)]
        for f in futures:
            with pytest.raises(RuntimeError, match="out of memory"):
                f.result(timeout=5)
    batcher.close()


def test_one_request_alone_never_waits_for_the_window(encoder: OnnxEncoder) -> None:
    batcher = BatchingEncoder(encoder, window_s=2.0)  # a window no request should ever sit through alone
    batcher.encode_one("warm up")
    with batcher.request():
        t0 = time.perf_counter()
        vector, _ = batcher.encode_one("vpn certificate expired on the gateway")
        seconds = time.perf_counter() - t0
    assert seconds < 1.0, seconds
    assert float(vector @ encoder.encode_one("vpn certificate expired on the gateway")[0]) > 0.999
    batcher.close()


def test_the_engine_answers_the_same_with_and_without_batching(settings: Settings, incidents: list[Incident]) -> None:
    batched = Engine.from_settings(settings.model_copy(update={"encode_max_batch": 16, "query_cache_size": 0}))
    query = SimilarQuery(text=incidents[4].text(), short_description=incidents[4].short_description,
                         description=incidents[4].description, top_k=5)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: batched.similar(query), range(16)))
    batcher = batched.current._batcher
    assert batcher is not None and batcher.encoded >= 16
    batched.close()
    alone = Engine.from_settings(settings.model_copy(update={"encode_max_batch": 1}))
    reference = alone.similar(query)
    assert alone.current._batcher is None
    alone.close()
    for answer in answers:
        assert [r.point_id for r in answer.results] == [r.point_id for r in reference.results]
        assert np.allclose([r.score for r in answer.results], [r.score for r in reference.results], atol=0.01)
