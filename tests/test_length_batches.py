"""Length-bucketed bulk encoding: batches by padded tokens, each incident its own vector in input order, and the
overlapped index loop stops at the batch whose encode failed."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from indexing.bundle import PARITY_MEAN_BAR, PARITY_MIN_BAR, Bundle
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from indexing.indexer import index_incidents
from indexing.length_batches import plan_batches
from indexing.store.edge import EdgeStore


@pytest.mark.parametrize("seed", range(20))
def test_each_text_in_exactly_one_batch_within_budget_and_count(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(2, 40), rng.randint(40, 384)]) for _ in range(rng.randint(1, 300))]
    budget, max_batch = rng.choice([256, 1024, 4096]), rng.randint(1, 64)
    batches = plan_batches(lengths, budget, max_batch)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)  # shortest first: padding within near-equal lengths
    for b in batches:
        assert 1 <= len(b) <= max_batch
        padded = len(b) * max(lengths[i] for i in b)
        assert padded <= budget or len(b) == 1  # a text longer than the budget goes alone
    # greedy: a batch is closed only because the next text would break the budget or the count
    for b, nxt in zip(batches, batches[1:], strict=False):
        grown = len(b) + 1
        assert grown > max_batch or grown * lengths[nxt[0]] > budget


def test_budget_off_is_batches_by_count() -> None:
    assert [len(b) for b in plan_batches([5, 300, 7, 9, 384], 0, 2)] == [2, 2, 1]
    assert plan_batches([], 1024, 8) == []
    with pytest.raises(ValueError, match="max_batch"):
        plan_batches([3], 1024, 0)


def mixed_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = "disk database timeout printer vpn certificate outlook backup payroll badge cpu latency".split()
    return [" ".join(rng.choice(words) for _ in range(rng.choice([2, 5, 30, 120]))) + f" case {k}" for k in range(n)]


def test_bucketed_encode_returns_each_text_its_own_vector_in_input_order(
        minilm_bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = OnnxEncoder(minilm_bundle.encoder_path, minilm_bundle.tokenizer_path, minilm_bundle.max_seq_length,
                          token_budget=256)
    texts = mixed_texts(60, seed=5)
    runs: list[tuple[int, int]] = []
    run = OnnxEncoder._run

    def recorded(enc: OnnxEncoder, rows: list[list[int]]) -> np.ndarray:
        runs.append((len(rows), max(len(r) for r in rows)))
        return run(enc, rows)

    monkeypatch.setattr(OnnxEncoder, "_run", recorded)
    bulk = encoder.encode(texts, batch_size=32).vectors
    alone = np.stack([encoder.encode([t]).vectors[0] for t in texts])
    assert len(runs) > 2 + len(texts)  # several bulk runs, then one per text
    assert all(rows * width <= 256 or rows == 1 for rows, width in runs)
    cosine = bulk @ alone.T
    assert (cosine.argmax(axis=1) == np.arange(len(texts))).all()  # row i is text i, not a batch-mate
    assert np.diag(cosine).mean() >= PARITY_MEAN_BAR and np.diag(cosine).min() >= PARITY_MIN_BAR


class FailingEncoder:
    """Encodes through a real encoder, failing on its `fail_at`-th call (a bulk encode that dies midway)."""

    def __init__(self, encoder: OnnxEncoder, fail_at: int) -> None:
        self.encoder, self.fail_at, self.calls = encoder, fail_at, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.encoder, name)

    def encode(self, texts: list[str], batch_size: int = 32):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("encode failed")
        return self.encoder.encode(texts, batch_size=batch_size)


def test_a_failed_encode_stops_the_overlapped_index_after_the_batches_before_it(
        tmp_path: Path, minilm_bundle: Bundle, encoder: OnnxEncoder, incidents: list[Incident]) -> None:
    store = EdgeStore(tmp_path / "edge")
    try:
        with pytest.raises(RuntimeError, match="encode failed"):
            index_incidents(incidents[:50], minilm_bundle, FailingEncoder(encoder, fail_at=3), store, page_size=10,
                            progress=False)
        held = {s.point_id for s in store.fetch([i.point_id for i in incidents[:50]], with_vectors=False)}
        assert held == {i.point_id for i in incidents[:20]}  # batches 1 and 2 written, nothing from 3 on
    finally:
        store.close()
