"""The document-frequency table (indexing/docfreq.py) gives exactly what counting in Qdrant gives, after
creates, updates, deletes, a failed write and a reopen; and the searcher no longer counts per query."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexing.docfreq import DocFreqTable
from indexing.errors import StoreUnavailableError
from indexing.incidents import point_id_for
from indexing.lexical import SparseVector
from indexing.store import edge_docfreq
from indexing.store.base import IndexMeta, IndexPoint
from indexing.store.edge import EdgeStore


def _store(path: Path) -> EdgeStore:
    store = EdgeStore(path)
    store.create_index(IndexMeta(index_version="v", model_version="m", encoder_id="e", dim=8, analyzer="x", k1=1.2,
                                 b=0.75, avgdl=5.0, created_at="2026-11-23T00:00:00+00:00"))
    return store


def _point(number: int, terms: list[int]) -> IndexPoint:
    rng = np.random.default_rng(number)
    return IndexPoint(point_id_for(f"INC{number:07d}"), rng.standard_normal(8).astype(np.float32),
                      SparseVector(sorted(set(terms)), [1.0] * len(set(terms))), {"number": f"INC{number:07d}"})


def _agrees(store: EdgeStore, vocabulary: range) -> None:
    n_docs, kept = store.bm25_stats(list(vocabulary))
    assert n_docs == store.count()
    assert kept == store.doc_freqs(list(vocabulary))  # exact filtered counts in Qdrant


def test_table_agrees_with_counts_after_creates_updates_deletes_and_reopen(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    store = _store(tmp_path / "i")
    store.upsert([_point(i, list(rng.integers(0, 40, 6))) for i in range(60)])
    _agrees(store, range(45))  # the table is built here
    store.upsert([_point(i, list(rng.integers(0, 40, 6))) for i in range(50, 80)])  # 10 updates, 20 creates
    _agrees(store, range(45))
    store.delete([point_id_for(f"INC{i:07d}") for i in (1, 2, 3, 999)])  # 999 never existed
    _agrees(store, range(45))
    store.upsert([_point(5, [41, 41, 42]), _point(5, [43])])  # one id twice in one batch: the last one wins
    _agrees(store, range(45))
    store.close()
    reopened = EdgeStore(tmp_path / "i")
    _agrees(reopened, range(45))
    reopened.close()


def test_the_term_index_and_the_term_lists_give_the_same_table(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """On open the table comes from one facet call on the term index (no payload read); reading every
    incident's term list (the fallback) gives the same table, deleted and replaced incidents included."""
    rng = np.random.default_rng(3)
    store = _store(tmp_path / "i")
    store.upsert([_point(i, list(rng.integers(0, 300, 12))) for i in range(400)])
    store.upsert([_point(i, list(rng.integers(0, 300, 12))) for i in range(350, 420)])
    store.delete([point_id_for(f"INC{i:07d}") for i in range(0, 400, 7)])
    store.close()
    from_index = EdgeStore(tmp_path / "i")
    assert edge_docfreq.table_from_facet(from_index._require()) is not None  # the facet path is the one taken
    n_index, df_index = from_index.bm25_stats(list(range(300)))
    from_index.close()
    monkeypatch.setattr(edge_docfreq, "table_from_facet", lambda shard: None)
    from_lists = EdgeStore(tmp_path / "i")
    n_lists, df_lists = from_lists.bm25_stats(list(range(300)))
    assert (n_index, df_index) == (n_lists, df_lists)
    assert n_index == from_lists.count() == 420 - len(range(0, 400, 7))
    _agrees(from_lists, range(300))
    from_lists.close()


def test_a_failed_write_rebuilds_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path / "i")
    store.upsert([_point(i, [i % 5, 10 + i % 3]) for i in range(20)])
    _agrees(store, range(15))

    real = store._require()

    class FullDisk:  # the shard as it behaves when the disk is full: reads work, the write fails
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def update(self, operation: object) -> None:
            raise OSError("No space left on device")

    monkeypatch.setattr(store, "_require", lambda: FullDisk())
    with pytest.raises(StoreUnavailableError, match="No space left"):
        store.upsert([_point(100, [1, 2])])
    assert store._df is None  # not trusted any more
    monkeypatch.undo()
    store.upsert([_point(101, [1, 2])])
    _agrees(store, range(15))
    store.close()


def test_the_searcher_does_not_count_per_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from indexing import lexical
    from indexing.search import HybridSearcher

    store = _store(tmp_path / "i")
    analyzer = lexical.Analyzer()
    bm25 = lexical.BM25Encoder(analyzer, lexical.BM25Params(1.2, 0.75, 5.0))
    texts = ["vpn certificate expired", "printer jam floor 3", "vpn gateway down", "outlook crashes on start"]
    store.upsert([IndexPoint(point_id_for(f"INC{i:07d}"), np.eye(8, dtype=np.float32)[i],
                             bm25.document(t, ""), {"number": f"INC{i:07d}"}) for i, t in enumerate(texts)])
    searcher = HybridSearcher(store, bm25, 0.7, 0.3)
    searcher.search(np.eye(8, dtype=np.float32)[0], "vpn expired", 2)  # builds the table
    monkeypatch.setattr(EdgeStore, "doc_freqs", lambda *a: pytest.fail("counted document frequencies per query"))
    monkeypatch.setattr(EdgeStore, "count", lambda *a: pytest.fail("counted the index per query"))
    top = searcher.search(np.eye(8, dtype=np.float32)[0], "vpn certificate expired", 2).results
    assert top[0].payload["number"] == "INC0000000"
    monkeypatch.undo()
    store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 15), st.lists(st.integers(0, 20), max_size=6)),
                max_size=40))
def test_table_matches_a_recount_for_any_write_sequence(writes: list[tuple[bool, int, list[int]]]) -> None:
    stored: dict[str, list[int]] = {}
    table = DocFreqTable()
    for is_delete, number, terms in writes:
        pid = f"p{number}"
        before = {pid: stored[pid]} if pid in stored else {}
        if is_delete:
            stored.pop(pid, None)
            table.apply(before, {})
        else:
            stored[pid] = terms
            table.apply(before, {pid: terms})
    recount = DocFreqTable.build(stored.values())
    assert table.n_docs == recount.n_docs == len(stored)
    assert table.doc_freqs(range(21)) == recount.doc_freqs(range(21))
