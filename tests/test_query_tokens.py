"""The optional cap on the tokens a /similar query is read with (INCIDENT_SIM_MAX_QUERY_TOKENS): a capped query
is encoded exactly as the model would read its first tokens, says it was truncated, and stored incidents keep
their full length."""

from __future__ import annotations

import numpy as np
import pytest

from indexing.bundle import Bundle
from indexing.encoder import OnnxEncoder, TokenCappedEncoder
from indexing.incidents import Incident
from service.engine import Engine, SimilarQuery
from service.settings import Settings

LONG = ("Outlook crashes on start for the finance team after the monthly patch; the add-in loader fails, the "
        "event log shows a faulting module mso.dll and a restart does not help; safe mode starts fine. ") * 4


def test_a_capped_query_reads_exactly_its_first_tokens(minilm_bundle: Bundle, encoder: OnnxEncoder) -> None:
    short_model = OnnxEncoder(minilm_bundle.encoder_path, minilm_bundle.tokenizer_path, max_seq_length=16)
    capped = TokenCappedEncoder(encoder, 16)
    vector, cut = capped.encode_one(LONG)
    reference, reference_cut = short_model.encode_one(LONG)  # a model that can only read 16 tokens
    assert cut and reference_cut
    assert np.allclose(vector, reference, atol=1e-6)
    full, full_cut = encoder.encode_one(LONG)
    assert float(vector @ full) < 0.999  # the cap changed what was read
    short = "printer jam on floor 3"
    assert np.array_equal(capped.encode_one(short)[0], encoder.encode_one(short)[0])  # short texts: untouched
    assert not capped.encode_one(short)[1]
    batch = capped.encode([LONG, short])  # (dynamic INT8 scales activations per batch: compare like with like)
    assert batch.truncated == 1
    assert np.allclose(batch.vectors, short_model.encode([LONG, short]).vectors, atol=1e-6)
    # a cap above the model's limit reads what the model can: the model's limit
    assert np.array_equal(encoder.encode([LONG], max_tokens=10_000).vectors, encoder.encode([LONG]).vectors)
    with pytest.raises(ValueError):
        TokenCappedEncoder(encoder, 1)


def test_the_service_caps_queries_not_stored_incidents(settings: Settings, minilm_bundle: Bundle,
                                                       encoder: OnnxEncoder, incidents: list[Incident]) -> None:
    engine = Engine.from_settings(settings.model_copy(update={"max_query_tokens": 16}))
    searcher = engine.searcher()

    def uncapped(text: str) -> list[tuple[str, float, float]]:  # what the same index answers a full-length query
        outcome = searcher.search(encoder.encode_one(text)[0], text, 5)
        return [(r.point_id, r.score, r.dense) for r in outcome.results]

    try:
        answer = engine.similar(SimilarQuery(text=LONG, top_k=5))
        assert answer.truncated  # the answer says the query was cut
        query_vector = TokenCappedEncoder(encoder, 16).encode_one(LONG)[0]
        stored = {s.payload["number"]: s.dense for s in
                  engine.store.fetch([r.point_id for r in answer.results], with_vectors=True)}
        for r in answer.results:  # cosine of the capped query against the stored (full-length) vector
            assert r.dense == pytest.approx(float(query_vector @ stored[r.payload["number"]]), abs=1e-5)
        assert [d for _, _, d in uncapped(LONG)] != [r.dense for r in answer.results]
        short = incidents[3].short_description
        capped_short = engine.similar(SimilarQuery(text=short, top_k=5))
        assert not capped_short.truncated
        assert [(r.point_id, r.score, r.dense) for r in capped_short.results] == uncapped(short)
    finally:
        engine.close()


@pytest.mark.parametrize("value", ["4", "0", "-1", "many"])
def test_a_malformed_cap_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("INCIDENT_SIM_MAX_QUERY_TOKENS", value)
    with pytest.raises(ValidationError, match="max_query_tokens"):
        Settings(dev_mode=True)
