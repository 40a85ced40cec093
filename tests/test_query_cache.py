"""The query-embedding cache (indexing/query_cache.py): a retried text is not encoded again and gets the same
vector; least recently used texts are evicted; the engine uses it (and not with size 0)."""

from __future__ import annotations

import numpy as np
import pytest

from indexing.encoder import OnnxEncoder
from indexing.query_cache import CachedQueryEncoder
from service.engine import Engine, SimilarQuery
from service.settings import Settings


class Counting:
    def __init__(self, encoder: OnnxEncoder) -> None:
        self.encoder, self.calls = encoder, 0

    def encode_one(self, text: str) -> tuple[np.ndarray, bool]:
        self.calls += 1
        return self.encoder.encode_one(text)


def test_a_retry_is_not_encoded_again_and_gets_the_same_vector(encoder: OnnxEncoder) -> None:
    counting = Counting(encoder)
    cache = CachedQueryEncoder(counting, size=2)  # type: ignore[arg-type]
    first, _ = cache.encode_one("vpn certificate expired")
    again, _ = cache.encode_one("vpn certificate expired")
    assert counting.calls == 1 and np.array_equal(first, again) and cache.hits == 1
    assert np.allclose(first, encoder.encode_one("vpn certificate expired")[0], atol=1e-6)
    with pytest.raises(ValueError):
        first[0] = 1.0  # cached vectors are read-only
    cache.encode_one("printer jam")
    cache.encode_one("vpn certificate expired")  # touch: now the most recent
    cache.encode_one("outlook crashes")  # evicts "printer jam", the least recent
    assert counting.calls == 3
    cache.encode_one("vpn certificate expired")
    assert counting.calls == 3
    cache.encode_one("printer jam")
    assert counting.calls == 4


def test_the_engine_caches_query_embeddings_unless_told_not_to(settings: Settings) -> None:
    query = SimilarQuery(text="mailbox full cannot send mail", top_k=3)
    for size, expected_hits in ((8, 1), (0, None)):
        engine = Engine.from_settings(settings.model_copy(update={"query_cache_size": size}))
        first, second = engine.similar(query), engine.similar(query)
        assert [r.point_id for r in first.results] == [r.point_id for r in second.results]
        cache, _ = engine.current.query_encoder(0, 1, 0)
        if expected_hits is None:
            assert not isinstance(cache, CachedQueryEncoder)
        else:
            assert isinstance(cache, CachedQueryEncoder) and cache.hits == expected_hits
        engine.close()
