"""The served score is exactly 0.7*cosine + 0.3*bm25_norm, and the served top-k is the true top-k."""

from __future__ import annotations

import numpy as np
import pytest

from brute_force import BruteForceHybrid
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from service.engine import Engine, SimilarQuery


@pytest.fixture(scope="module")
def queries(incidents: list[Incident]) -> list[str]:
    from training.data.sample import generate_incidents

    # unseen incidents (another seed) plus a few texts copied from the corpus
    fresh = [f"{r['short_description']}\n{r['description']}" for r in generate_incidents(40, seed=99)]
    return fresh + [incidents[i].text() for i in (0, 17, 123)] + ["ORA-1652 db-srv07 tablespace", "printer"]


def _oracle(engine: Engine, incidents: list[Incident]) -> BruteForceHybrid:
    meta = engine.store.meta()
    assert meta is not None
    texts = {i.number: (i.short_description, i.description) for i in incidents}
    stored = engine.store.fetch([i.point_id for i in incidents])
    return BruteForceHybrid(texts, {s.payload["number"]: s.dense for s in stored}, meta.k1, meta.b, meta.avgdl,
                            analyzer=meta.analyzer, normalization=engine.bundle.bm25["normalization"])


@pytest.mark.parametrize("candidate_k", [100, 10])
def test_filtered_top_k_is_the_exact_top_k_of_the_matching_incidents(
        engine: Engine, encoder: OnnxEncoder, incidents: list[Incident], queries: list[str], candidate_k: int) -> None:
    """Filters run inside the store query: the answer is the true top-k among matching incidents (not a
    post-filtered short list), and every score is the unfiltered score of that incident."""
    engine.reset_searcher(candidate_k)
    oracle = _oracle(engine, incidents)
    by_number = {i.number: i for i in incidents}
    category = "Network"
    cutoff = sorted(i.opened_at for i in incidents if i.opened_at)[len(incidents) // 2]
    assert sum(i.category == category for i in incidents) > 20
    for query in queries[:15]:
        q = engine.build_query(None, None, query, 10, fields={"category": [category]}, opened_after=cutoff)
        answer = engine.similar(q)
        allowed_numbers = {n for n, i in by_number.items() if i.category == category and i.opened_at >= cutoff}
        expected = {n: v for n, v in oracle.scores(query, encoder.encode_one(query)[0]).items()
                    if n in allowed_numbers}
        ranked = sorted(expected.items(), key=lambda kv: -kv[1][0])
        assert answer.exact
        assert len(answer.results) == min(10, len(allowed_numbers))
        served = {r.payload["number"] for r in answer.results}
        assert served <= allowed_numbers
        kth = ranked[len(answer.results) - 1][1][0]
        assert {n for n, v in ranked if v[0] > kth + 1e-5} <= served
        for r in answer.results:
            assert r.score == pytest.approx(expected[r.payload["number"]][0], abs=1e-5)


def test_filter_matching_nothing_gives_no_results(engine: Engine) -> None:
    q = engine.build_query(None, None, "vpn certificate", 5, fields={"assignment_group": ["No Such Group"]})
    assert engine.similar(q).results == []


def test_matched_terms_explain_the_bm25_part(engine: Engine, incidents: list[Incident]) -> None:
    from indexing.lexical import Analyzer

    analyzer = Analyzer.from_name(engine.store.meta().analyzer)  # type: ignore[union-attr]
    by_number = {i.number: i for i in incidents}
    query = incidents[7].text() + " zzqxv"
    doc_freq = {}
    answer = engine.similar(SimilarQuery(text=query, top_k=10))
    for r in answer.results:
        stored = by_number[r.payload["number"]]
        doc_tokens = set(analyzer.document_tokens(stored.short_description, stored.description))
        # a word's term is its first token (a compound like 'srv64-stg' also names its parts separately)
        expected = {w for w in analyzer.query_terms(query).values() if analyzer.tokens(w)[0] in doc_tokens}
        assert set(r.matched_terms) == expected
        assert "zzqxv" not in r.matched_terms
        assert (r.bm25_raw > 0) == bool(r.matched_terms)
        for w in r.matched_terms:  # rarest first: document frequency never decreases along the list
            doc_freq[w] = sum(analyzer.tokens(w)[0] in analyzer.document_tokens(i.short_description, i.description)
                              for i in incidents)
        freqs = [doc_freq[w] for w in r.matched_terms]
        assert freqs == sorted(freqs)


@pytest.mark.parametrize("candidate_k", [100, 10])
def test_scores_and_top10_equal_brute_force(engine: Engine, encoder: OnnxEncoder, incidents: list[Incident],
                                            queries: list[str], candidate_k: int) -> None:
    engine.reset_searcher(candidate_k)  # 10 forces the candidate set to grow before it is certified
    meta = engine.store.meta()
    assert meta is not None
    texts = {i.number: (i.short_description, i.description) for i in incidents}
    # The incident vectors are taken as stored: INT8 dynamic quantisation makes an embedding depend
    # slightly on its batch companions, so re-encoding here would test the encoder, not the scoring.
    stored = engine.store.fetch([i.point_id for i in incidents])
    vectors = {s.payload["number"]: s.dense for s in stored}
    assert len(vectors) == len(texts)
    oracle = BruteForceHybrid(texts, vectors, meta.k1, meta.b, meta.avgdl, analyzer=meta.analyzer,
                              normalization=engine.bundle.bm25["normalization"])
    grown = 0
    for query in queries:
        answer = engine.similar(SimilarQuery(text=query, top_k=10))
        expected = oracle.scores(query, encoder.encode_one(query)[0])
        assert answer.exact
        assert len(answer.results) == 10
        for r in answer.results:
            number = r.payload["number"]
            score, dense, bm25 = expected[number]
            assert r.dense == pytest.approx(dense, abs=1e-5)
            assert r.bm25 == pytest.approx(bm25, abs=1e-5)
            assert 0.0 <= r.bm25 <= 1.0
            assert r.score == pytest.approx(0.7 * r.dense + 0.3 * r.bm25, abs=1e-12)
            assert r.score == pytest.approx(score, abs=1e-5)
        ranked = sorted(expected.items(), key=lambda kv: -kv[1][0])
        tenth = ranked[9][1][0]
        served = {r.payload["number"] for r in answer.results}
        must_have = {n for n, s in ranked if s[0] > tenth + 1e-5}
        allowed = {n for n, s in ranked if s[0] >= tenth - 1e-5}
        assert must_have <= served <= allowed, query
        scores = [r.score for r in answer.results]
        assert scores == sorted(scores, reverse=True)
        outcome = engine.searcher().search(encoder.encode_one(query)[0], query, 10)
        grown += outcome.candidate_k > candidate_k
    if candidate_k == 10:
        assert grown > 0, "a candidate set of 10 should have had to grow for some queries"


def test_bm25_norm_does_not_depend_on_other_results(engine: Engine, incidents: list[Incident]) -> None:
    """The same (query, incident) pair gets the same bm25 whatever else the query returns."""
    query = incidents[5].text()
    wide = {r.payload["number"]: r.bm25 for r in engine.similar(SimilarQuery(text=query, top_k=20)).results}
    top = engine.similar(SimilarQuery(text=query, top_k=20)).results
    excluded = [top[0].payload["number"], top[1].payload["number"]]
    narrow = engine.similar(engine.build_query(None, None, query, 10, exclude=excluded)).results
    for r in narrow:
        assert r.payload["number"] not in excluded
        assert r.bm25 == pytest.approx(wide.get(r.payload["number"], r.bm25), abs=1e-12)


def test_query_with_unknown_terms_only_has_zero_bm25(engine: Engine) -> None:
    answer = engine.similar(SimilarQuery(text="zzqxv wqpzk", top_k=3))
    assert all(r.bm25 == 0.0 for r in answer.results)
    assert all(np.isclose(r.score, 0.7 * r.dense) for r in answer.results)


def test_stages_say_where_a_search_spent_its_time(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The id-filtered queries that complete each candidate's two parts are timed apart (`candidate_scores`),
    not inside `dense_search`/`bm25_search` (the top-K queries), so ops see which part costs."""
    import time

    from indexing.search import SEARCH_STAGES

    store = engine.store
    real_dense, real_sparse = store.search_dense, store.search_sparse

    def slow_completions(real, pause: float):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            among = args[2] if len(args) > 2 else kwargs.get("among")
            if among is not None:
                time.sleep(pause)
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(store, "search_dense", slow_completions(real_dense, 0.05))
    monkeypatch.setattr(store, "search_sparse", slow_completions(real_sparse, 0.05))
    engine.reset_searcher(10)  # few candidates per list: some lack the other part
    answer = engine.similar(SimilarQuery(text="VPN tunnel drops every few minutes for remote staff", top_k=5))
    stages = answer.stage_seconds
    assert tuple(k for k in stages if k != "encode") == SEARCH_STAGES
    assert stages["candidate_scores"] >= 0.05
    assert stages["dense_search"] < 0.05 and stages["bm25_search"] < 0.05


def test_a_cosine_past_one_from_float32_rounding_is_clamped_offline_and_served() -> None:
    # float32 unit vectors whose dot product with themselves rounds past 1: the score contract says
    # dense is a cosine in [-1, 1], and calibration and serving must agree on the clamp
    from indexing.lexical import ANALYZER_NAME
    from indexing.scoring import cosine_in_range
    from training.scorer import scorer_for_incidents

    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(400, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    over = vectors[(vectors * vectors).sum(axis=1, dtype=np.float32) > 1.0][:3]
    assert len(over) == 3, "the seed must give vectors whose float32 self-dot exceeds 1"
    incidents = [Incident(number=f"INC{i:07d}", short_description=f"disk full on host {i}", description="")
                 for i in range(len(over))]
    scorer = scorer_for_incidents(incidents, over, ANALYZER_NAME, 1.2, 0.75, "query_self_score", 0.7, 0.3)
    for row, vector in enumerate(over):
        one = scorer.score(vector, incidents[row].text())
        block = scorer.score_block(vector[None, :], [incidents[row].text()])
        assert one["dense"][row] == 1.0 and block["dense"][0, row] == 1.0
        assert one["hybrid"][row] <= 1.0 + 1e-12
    assert cosine_in_range(1.0000001192092896) == 1.0 and cosine_in_range(-1.0000001) == -1.0
    assert cosine_in_range(0.25) == 0.25
