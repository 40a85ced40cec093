"""An independent brute-force implementation of the served hybrid score, for exactness tests.

It shares only the analyzer (the definition of a term) with the product; document frequencies,
IDF, BM25 weights, normalisation and cosine are recomputed here from the raw incident texts."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from indexing.lexical import Analyzer


class BruteForceHybrid:
    def __init__(self, documents: dict[str, tuple[str, str]], vectors: dict[str, np.ndarray], k1: float, b: float,
                 avgdl: float, dense_weight: float = 0.7, bm25_weight: float = 0.3, analyzer: str = "incident-v1",
                 normalization: str = "idf_upper_bound") -> None:
        self.analyzer = Analyzer.from_name(analyzer)
        self.normalization = normalization
        self.tokens = {number: self.analyzer.document_tokens(*doc) for number, doc in documents.items()}
        self.vectors = {n: v / np.linalg.norm(v) for n, v in vectors.items()}
        self.k1, self.b, self.avgdl = k1, b, avgdl
        self.df: Counter[str] = Counter()
        for toks in self.tokens.values():
            self.df.update(set(toks))
        self.n = len(documents)
        self.wd, self.wb = dense_weight, bm25_weight

    def idf(self, term: str) -> float:
        n = self.df.get(term, 0)
        return math.log(1 + (self.n - n + 0.5) / (n + 0.5))

    def bm25_classic(self, query: str, number: str) -> float:
        """Textbook BM25 with Qdrant's IDF: sum_t qtf * idf * tf (k1+1) / (tf + k1 (1 - b + b dl/avgdl))."""
        q = Counter(self.analyzer.tokens(query))
        doc = Counter(self.tokens[number])
        dl = len(self.tokens[number])
        total = 0.0
        for term, qtf in q.items():
            tf = doc.get(term, 0)
            if tf:
                saturation = tf + self.k1 * (1 - self.b + self.b * dl / self.avgdl)
                total += qtf * self.idf(term) * tf * (self.k1 + 1) / saturation
        return total

    def bm25_norm(self, query: str, number: str) -> float:
        q = Counter(self.analyzer.tokens(query))
        present = {t: qtf for t, qtf in q.items() if self.df.get(t, 0) > 0}
        if self.normalization == "idf_upper_bound":  # tf -> infinity for every query term
            bound = (self.k1 + 1) * sum(qtf * self.idf(t) for t, qtf in present.items())
        else:  # the query scored against itself as a document of length |q|
            ql = sum(q.values())
            sat = self.k1 * (1 - self.b + self.b * ql / self.avgdl)
            bound = sum(qtf * self.idf(t) * qtf * (self.k1 + 1) / (qtf + sat) for t, qtf in present.items())
        return 0.0 if bound == 0 else min(self.bm25_classic(query, number) / bound, 1.0)

    def scores(self, query: str, query_vector: np.ndarray) -> dict[str, tuple[float, float, float]]:
        qv = query_vector / np.linalg.norm(query_vector)
        out = {}
        for number in self.tokens:
            dense = float(np.dot(qv, self.vectors[number]))
            bm25 = self.bm25_norm(query, number)
            out[number] = (self.wd * dense + self.wb * bm25, dense, bm25)
        return out
