"""Document frequencies of the BM25 terms of one index version, kept exact by the write path.

BM25's IDF and the score's normalising bound need, for every query term, how many stored incidents
contain it, and how many incidents there are. Counting them in the store costs one exact filtered count
per distinct query term on every query, growing with the index and the query's length (31.5 ms of a
45.5 ms retrieval at 100k incidents). Where the service's process is the only writer of the index
(Qdrant Edge holds an exclusive lock on its shard), the store keeps this table instead: built once from
the stored term lists, then updated by each upsert and delete with the terms the write removes and
adds. It gives exactly what the counts give (tests/test_docfreq.py compares them after creates,
updates and deletes), so a served score stays the evaluated score."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence


class DocFreqTable:
    def __init__(self) -> None:
        self._df: Counter[int] = Counter()
        self.n_docs = 0

    @classmethod
    def build(cls, documents: Iterable[Sequence[int]]) -> DocFreqTable:
        """From every stored incident's distinct term ids."""
        table = cls()
        for terms in documents:
            table._df.update(set(terms))
            table.n_docs += 1
        return table

    @classmethod
    def from_counts(cls, n_docs: int, doc_freq: Mapping[int, int]) -> DocFreqTable:
        """From counts the store already keeps (Qdrant's payload index on the term ids: one facet call, without
        reading any incident)."""
        table = cls()
        table._df.update({t: n for t, n in doc_freq.items() if n > 0})
        table.n_docs = n_docs
        return table

    def apply(self, before: Mapping[str, Sequence[int]], after: Mapping[str, Sequence[int]]) -> None:
        """One applied write: `before` holds the term ids of the incidents it replaced or deleted (those that
        existed), `after` those of the incidents it stored (empty for a delete)."""
        for terms in before.values():
            self._df.subtract(set(terms))
        for terms in after.values():
            self._df.update(set(terms))
        self.n_docs += len(after.keys() - before.keys()) - len(before.keys() - after.keys())
        if len(self._df) > 2 * max(self.n_docs, 1024):  # drop terms no incident holds any more
            self._df = Counter({t: n for t, n in self._df.items() if n > 0})

    def doc_freqs(self, term_ids: Iterable[int]) -> dict[int, int]:
        return {t: max(self._df.get(t, 0), 0) for t in term_ids}

    @property
    def terms(self) -> int:
        return sum(1 for n in self._df.values() if n > 0)
