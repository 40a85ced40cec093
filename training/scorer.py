"""The offline scorer: the served formulas (0.7 * cosine + 0.3 * bm25_norm, Qdrant's IDF, the store's N and
document frequencies) over every stored incident, for one query or for a block of queries at once (BLAS:
queries x corpus dot products; the BM25 side as a sparse matrix product), and the index it reads.

Each text is encoded once per calibrate run, exactly as /similar encodes a query: `QueryPathEncoder` answers
a batch by encoding every text alone (the bundle's INT8 encoder quantises each call's activations with one
scale, so a text's vector depends on its batch mates: up to 0.024 per component on the test model) and
remembers every answer. The evaluation index stores those vectors, and each incident asked as a new one gets
the same vector back from the memory: the evaluated score is the served one (the query vector /similar
computes for that text, against the stored vectors), without a second encode."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse as sp

from indexing import lexical
from indexing.bundle import Bundle
from indexing.dense_text import TextEncoder
from indexing.encoder import EncodedBatch, OnnxEncoder
from indexing.errors import InputDataError
from indexing.incidents import Incident
from indexing.indexer import bm25_encoder_for, index_incidents
from indexing.scoring import LEGACY_NORMALIZATION, hybrid_score
from indexing.store.base import IncidentStore
from indexing.store.edge import EdgeStore
from training.data.labels import LabelledCorpus

logger = logging.getLogger(__name__)


class QueryPathEncoder:
    """Encodes every text alone (the /similar query path) and remembers it by text: a batch is the stack of
    the texts' single encodes, so stored and query vectors of one text are the same array, computed once.
    `encoded` counts the texts actually sent to the model."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self._single: dict[str, tuple[np.ndarray, bool]] = {}
        self.encoded = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.encoder, name)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> EncodedBatch:
        if not texts:
            return self.encoder.encode(texts, batch_size=batch_size)
        answers = [self.encode_one(t) for t in texts]
        cut = tuple(bool(c) for _, c in answers)
        return EncodedBatch(np.stack([v for v, _ in answers]).astype(np.float32), sum(cut), cut)

    def encode_one(self, text: str) -> tuple[np.ndarray, bool]:
        if text not in self._single:
            self._single[text] = self.encoder.encode_one(text)
            self.encoded += 1
        return self._single[text]


class OfflineScorer:
    """Scores queries against every stored incident with the served formulas."""

    def __init__(self, dense: np.ndarray, sparse_docs: Sequence[dict[int, float]], bm25: lexical.BM25Encoder,
                 dense_weight: float, bm25_weight: float, normalization: str = LEGACY_NORMALIZATION) -> None:
        self.dense = dense
        self.normalization = normalization
        self.bm25 = bm25
        self.dense_weight, self.bm25_weight = dense_weight, bm25_weight
        self.sparse_docs = sparse_docs
        self.n_docs = len(sparse_docs)
        postings: dict[int, list[tuple[int, float]]] = {}
        for row, doc in enumerate(sparse_docs):
            for term, weight in doc.items():
                postings.setdefault(term, []).append((row, weight))
        self.postings = {t: (np.array([r for r, _ in p]), np.array([w for _, w in p])) for t, p in postings.items()}
        # the same weights as a sparse (documents x terms) matrix, columns numbered in first-seen order
        self.column = {t: c for c, t in enumerate(self.postings)}
        rows = np.concatenate([r for r, _ in self.postings.values()]) if self.postings else np.zeros(0, int)
        cols = np.concatenate([np.full(len(r), c) for c, (r, _) in enumerate(self.postings.values())]) \
            if self.postings else np.zeros(0, int)
        weights = np.concatenate([w for _, w in self.postings.values()]) if self.postings else np.zeros(0)
        self.doc_matrix = sp.csr_matrix((weights, (rows, cols)), shape=(self.n_docs, max(len(self.column), 1)))
        self._doc_matrix_t = self.doc_matrix.T.tocsr()

    def with_dense(self, dense: np.ndarray) -> OfflineScorer:
        """The same BM25 side over other dense vectors (another dense text mode of the same incidents)."""
        other = object.__new__(OfflineScorer)
        other.__dict__.update(self.__dict__)
        other.dense = dense
        return other

    @classmethod
    def from_store(cls, store: IncidentStore, point_ids: Sequence[str], bm25: lexical.BM25Encoder,
                   dense_weight: float, bm25_weight: float, normalization: str = LEGACY_NORMALIZATION) -> OfflineScorer:
        stored = {}
        for start in range(0, len(point_ids), 256):
            for s in store.fetch(point_ids[start : start + 256], with_vectors=True):
                stored[s.point_id] = s
        missing = [p for p in point_ids if p not in stored]
        if missing:
            raise InputDataError(f"{len(missing)} incidents of the corpus are not in the index")
        if store.count() != len(point_ids):
            raise InputDataError(f"the index holds {store.count()} incidents, the corpus {len(point_ids)}: "
                                 "evaluate on an index of exactly this corpus")
        dense = np.stack([stored[p].dense for p in point_ids]).astype(np.float32)
        return cls(dense, [stored[p].sparse or {} for p in point_ids], bm25, dense_weight, bm25_weight, normalization)

    def _query_terms(self, text: str) -> tuple[lexical.SparseVector, dict[int, float], dict[int, int]]:
        sparse_q = self.bm25.query(text)
        doc_freq = {t: (len(self.postings[t][0]) if t in self.postings else 0) for t in sparse_q.indices}
        idf = {t: lexical.idf(self.n_docs, doc_freq[t]) for t in sparse_q.indices}
        return sparse_q, idf, doc_freq

    def _bound(self, sparse_q: lexical.SparseVector, idf: dict[int, float], doc_freq: dict[int, int]) -> float:
        return lexical.upper_bound(sparse_q, idf, doc_freq, self.normalization, self.bm25.params)

    def score(self, query_vector: np.ndarray, query_text: str) -> dict[str, np.ndarray]:
        """One query (the per-query path: postings walked term by term)."""
        sparse_q, idf, doc_freq = self._query_terms(query_text)
        raw = np.zeros(self.n_docs)
        for term, qtf in zip(sparse_q.indices, sparse_q.values, strict=True):
            if term in self.postings:
                rows, weights = self.postings[term]
                raw[rows] += qtf * idf[term] * weights
        bound = self._bound(sparse_q, idf, doc_freq)
        bm25 = np.clip(raw / bound, 0.0, 1.0) if bound > 0 else np.zeros(self.n_docs)
        dense = np.clip((self.dense @ query_vector.astype(np.float32)).astype(float), -1.0, 1.0)  # cosine_in_range
        return {"dense": dense, "bm25": bm25,
                "hybrid": hybrid_score(dense, bm25, self.dense_weight, self.bm25_weight), "raw": raw}

    def score_block(self, query_vectors: np.ndarray, query_texts: Sequence[str]) -> dict[str, np.ndarray]:
        """A block of queries at once, rows = queries, columns = stored incidents: the dense side one float32
        matrix product, the BM25 side (query term weights qtf * idf) x (document weights)^T as a sparse
        product. Same formulas as `score`; the sums run in another order (differences ~1e-7 in `dense`)."""
        n_q = len(query_texts)
        bounds = np.zeros(n_q)
        q_rows: list[int] = []
        q_cols: list[int] = []
        q_vals: list[float] = []
        for r, text in enumerate(query_texts):
            sparse_q, idf, doc_freq = self._query_terms(text)
            bounds[r] = self._bound(sparse_q, idf, doc_freq)
            for term, qtf in zip(sparse_q.indices, sparse_q.values, strict=True):
                if term in self.column:
                    q_rows.append(r)
                    q_cols.append(self.column[term])
                    q_vals.append(qtf * idf[term])
        queries = sp.csr_matrix((q_vals, (q_rows, q_cols)), shape=(n_q, self.doc_matrix.shape[1]))
        raw = (queries @ self._doc_matrix_t).toarray() if self.n_docs else np.zeros((n_q, 0))
        safe = np.where(bounds > 0, bounds, 1.0)[:, None]
        bm25 = np.where(bounds[:, None] > 0, np.clip(raw / safe, 0.0, 1.0), 0.0)
        dense = np.clip((np.asarray(query_vectors, dtype=np.float32) @ self.dense.T).astype(float), -1.0, 1.0)
        return {"dense": dense, "bm25": bm25,
                "hybrid": hybrid_score(dense, bm25, self.dense_weight, self.bm25_weight), "raw": raw}


def scorer_for_incidents(incidents: Sequence[Incident], dense: np.ndarray, analyzer: str, k1: float, b: float,
                         normalization: str, dense_weight: float, bm25_weight: float) -> OfflineScorer:
    """An OfflineScorer over incidents not (yet) in a store: BM25 statistics computed from the incidents
    themselves with the served analyzer and formulas."""
    analyzer_obj = lexical.Analyzer.from_name(analyzer)
    avgdl = lexical.average_document_length(analyzer_obj, [(i.short_description, i.description) for i in incidents])
    bm25 = lexical.BM25Encoder(analyzer_obj, lexical.BM25Params(k1, b, avgdl))
    sparse = [bm25.document(i.short_description, i.description) for i in incidents]
    return OfflineScorer(dense, [dict(zip(s.indices, s.values, strict=True)) for s in sparse], bm25,
                         dense_weight, bm25_weight, normalization)


def build_scorer(bundle: Bundle, corpus: LabelledCorpus, index_dir: Path, normalization: str | None = None,
                 progress: bool = True, encoder: TextEncoder | None = None) -> tuple[OfflineScorer, TextEncoder]:
    """Index the corpus with the product's indexer into a fresh Qdrant Edge index at `index_dir`
    and read the vectors back: the evaluation scores what the service would serve. `encoder`: the bundle's
    encoder when the caller already has one (e.g. a MemoEncoder shared by several dense text modes)."""
    if encoder is None:  # each text encoded once, alone, as /similar encodes it (see the module's docstring)
        encoder = QueryPathEncoder(OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length))
    store = EdgeStore(index_dir)
    try:
        meta = store.meta()
        point_ids = [i.point_id for i in corpus.incidents]
        reusable = (meta is not None and meta.encoder_id == bundle.encoder_id
                    and meta.analyzer == bundle.bm25["analyzer"] and store.count() == len(point_ids)
                    and len(store.fetch(point_ids, with_vectors=False)) == len(point_ids))
        if reusable:
            logger.info("reusing the evaluation index at %s (same encoder, analyzer and incidents)", index_dir)
        else:
            if meta is not None:
                raise InputDataError(f"{index_dir} holds an index of other incidents or another encoder; "
                                     "remove it or evaluate elsewhere")
            index_incidents(corpus.incidents, bundle, encoder, store, progress=progress)
        meta = store.meta()
        assert meta is not None
        scorer = OfflineScorer.from_store(
            store, [i.point_id for i in corpus.incidents], bm25_encoder_for(meta, bundle.max_query_terms),
            bundle.dense_weight,
            bundle.bm25_weight, normalization or bundle.scoring.normalization)
    finally:
        store.close()
    return scorer, encoder
