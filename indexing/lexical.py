"""BM25 for incidents: the analyzer, the sparse vectors stored in Qdrant, and the normalisation.

How the served BM25 is computed (and reproduced exactly offline):

* Documents are stored as sparse vectors whose value for term t is the BM25 term-frequency
  saturation divided by (k1 + 1), so every value lies in (0, 1):
      w(t, d) = tf / (tf + k1 * (1 - b + b * |d| / avgdl))
  `avgdl` is fixed when an index version is created and recorded in its metadata, so a stored
  vector never changes meaning when later incidents arrive.
* Queries are sparse vectors whose value for term t is its count in the query (qtf).
* Qdrant applies the IDF modifier at query time with the corpus statistics of the index:
      idf(t) = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))
  so Qdrant's score is  raw(q, d) = sum_t qtf * idf(t) * w(t, d)  =  BM25(q, d) / (k1 + 1).
  (`rank-bm25`'s BM25Okapi uses ln((N - n + 0.5) / (n + 0.5)) with an epsilon floor instead:
  same ranking for terms in fewer than half of the documents, different values.)
* Normalisation ("idf_upper_bound"): since w < 1, raw(q, d) < sum_{t in q, n_t > 0} qtf * idf(t).
  bm25_norm = raw / that bound lies in [0, 1) and depends only on the query and the corpus
  statistics, never on the other results of the query.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

ANALYZER_NAME = "incident-v1"

_TOKEN = re.compile(r"[a-z0-9]+(?:[._:/\\@-][a-z0-9]+)*")
_SPLIT = re.compile(r"[._:/\\@-]")

# Short, conservative English stop list: words that carry no incident-specific meaning.
STOP_WORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her his i if
    in into is it its me my no not of on or our so than that the their them then there these they this
    to too us was we were what when where which while who will with would you your also am any get got
    just please pls hi hello thanks thank regards""".split()
)


@dataclass(frozen=True)
class Analyzer:
    """Lowercase word tokens. Options (all recorded in the analyzer's name, which bundles and indexes
    carry, so indexing and querying always analyse alike):

    * identifiers (hostnames, error codes, versions, KB numbers) are kept whole, and with `split`
      also split into their parts, so `srv-db01.corp` matches `srv-db01.corp`, `db01` and `corp`;
    * `stop`: drop a short English stop list;
    * `stem`: Snowball (Porter2) stemming of plain words (identifiers are never stemmed);
    * `summary_weight`: the short description's terms count this many times in a document."""

    split: bool = True
    stop: bool = True
    stem: bool = False
    summary_weight: int = 1
    min_token_len: int = 2

    @property
    def name(self) -> str:
        flags = [f for f, on in (("nosplit", not self.split), ("nostop", not self.stop), ("stem", self.stem)) if on]
        if self.summary_weight != 1:
            flags.append(f"sw{self.summary_weight}")
        return "+".join([ANALYZER_NAME, *flags])

    @classmethod
    def from_name(cls, name: str) -> Analyzer:
        base, *flags = name.split("+")
        if base != ANALYZER_NAME:
            raise ValueError(f"unknown analyzer {name!r}")
        options: dict[str, object] = {}
        for flag in flags:
            if flag == "nosplit":
                options["split"] = False
            elif flag == "nostop":
                options["stop"] = False
            elif flag == "stem":
                options["stem"] = True
            elif flag.startswith("sw") and flag[2:].isdigit():
                options["summary_weight"] = int(flag[2:])
            else:
                raise ValueError(f"unknown analyzer option {flag!r} in {name!r}")
        analyzer = cls(**options)  # type: ignore[arg-type]
        if analyzer.name != name:
            raise ValueError(f"analyzer name {name!r} is not canonical (expected {analyzer.name!r})")
        return analyzer

    def tokens(self, text: str) -> list[str]:
        out: list[str] = []
        for match in _TOKEN.finditer(text.lower()):
            token = match.group(0)
            if _SPLIT.search(token):
                out.append(token)
                if self.split:
                    out.extend(self._word(p) for p in _SPLIT.split(token) if self._keep(p))
            elif self._keep(token):
                out.append(self._word(token))
        return out

    def query_terms(self, text: str) -> dict[int, str]:
        """Term id -> the first word of `text` that produced it (for explanations: 'certificate', not the
        stem 'certif')."""
        out: dict[int, str] = {}
        for match in _TOKEN.finditer(text.lower()):
            word = match.group(0)
            compound = bool(_SPLIT.search(word))  # 'srv64-stg' gives itself and its parts: name each one
            for token in self.tokens(word):
                out.setdefault(term_id(token), token if compound else word)
        return out

    def document_tokens(self, short_description: str, description: str) -> list[str]:
        """Tokens of a stored incident (the short description weighted by `summary_weight`)."""
        summary = self.tokens(short_description)
        return summary * self.summary_weight + self.tokens(description)

    def _keep(self, token: str) -> bool:
        return len(token) >= self.min_token_len and not (self.stop and token in STOP_WORDS)

    def _word(self, token: str) -> str:
        return _stem(token) if self.stem and token.isalpha() else token


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


_STEMMER = snowballstemmer.stemmer("english")


def term_id(token: str) -> int:
    """Stable 32-bit id of a token (Qdrant sparse indices are u32). CRC32 collisions are rare
    (~1 pair in 10^5 distinct terms) and only ever merge two terms' statistics."""
    return zlib.crc32(token.encode("utf-8"))


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]

    def as_dict(self) -> dict[int, float]:
        return dict(zip(self.indices, self.values, strict=True))


@dataclass(frozen=True)
class BM25Params:
    k1: float = 1.2
    b: float = 0.75
    avgdl: float = 0.0  # fixed per index version; 0 means "not set yet"


class BM25Encoder:
    """Turns analyzed text into the document and query sparse vectors described above."""

    def __init__(self, analyzer: Analyzer, params: BM25Params, max_query_terms: int | None = None) -> None:
        if params.avgdl <= 0:
            raise ValueError("BM25Encoder needs avgdl > 0 (taken from the index metadata)")
        if max_query_terms is not None and max_query_terms < 1:
            raise ValueError(f"max_query_terms must be at least 1, not {max_query_terms}")
        self.analyzer = analyzer
        self.params = params
        self.max_query_terms = max_query_terms  # the bundle's bound; None: every term

    def document(self, short_description: str, description: str = "") -> SparseVector:
        """Sparse vector of a stored incident. Its indices are also stored as payload (`terms`) so the
        document frequency of a term can be counted exactly as Qdrant's IDF modifier counts it."""
        tokens = self.analyzer.document_tokens(short_description, description)
        counts = Counter(tokens)
        k1, b, avgdl = self.params.k1, self.params.b, self.params.avgdl
        norm = k1 * (1.0 - b + b * len(tokens) / avgdl)
        weights: dict[int, float] = {}
        for token, tf in counts.items():
            weights[term_id(token)] = weights.get(term_id(token), 0.0) + tf / (tf + norm)
        indices = sorted(weights)
        return SparseVector(indices, [weights[i] for i in indices])

    def query(self, text: str) -> SparseVector:
        """The query's terms with their counts. With `max_query_terms`, only the first that many distinct
        terms in the text's order count (the short description comes first): a pasted log cannot make a query
        expensive, and served and evaluated queries are bounded alike (both build their encoder from the
        bundle's setting)."""
        counts = Counter(self.analyzer.tokens(text))  # keeps the order of first appearance
        by_id: dict[int, float] = {}
        for token, qtf in counts.items():
            tid = term_id(token)
            if tid not in by_id and self.max_query_terms is not None and len(by_id) >= self.max_query_terms:
                continue
            by_id[tid] = by_id.get(tid, 0.0) + float(qtf)
        indices = sorted(by_id)
        return SparseVector(indices, [by_id[i] for i in indices])


def average_document_length(analyzer: Analyzer, documents: Iterable[tuple[str, str]]) -> float:
    """Mean analysed length of (short_description, description) documents (streamed: any iterable)."""
    total = count = 0
    for short_description, description in documents:
        total += len(analyzer.document_tokens(short_description, description))
        count += 1
    if not count:
        raise ValueError("cannot compute avgdl of an empty corpus")
    return max(total / count, 1.0)


def idf(n_docs: int, doc_freq: int) -> float:
    """Qdrant's IDF modifier (checked against Qdrant Edge in tests)."""
    return math.log(1.0 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))


NORMALIZATIONS = ("idf_upper_bound", "query_self_score")


def upper_bound(query: SparseVector, idf_by_term: Mapping[int, float], doc_freq: Mapping[int, int],
                mode: str = "idf_upper_bound", params: BM25Params | None = None) -> float:
    """The per-query divisor of BM25; it depends on the query and the corpus statistics only.

    * idf_upper_bound: the most any stored document could score for these terms (each stored weight is
      below 1), so bm25_norm < 1 always;
    * query_self_score: the score the query would get against itself as a document; documents that
      repeat the query's terms more can exceed it and are clipped to 1.
    Terms no stored document has are left out of both."""
    present = [(t, qv) for t, qv in zip(query.indices, query.values, strict=True) if doc_freq.get(t, 0) > 0]
    if mode == "idf_upper_bound":
        return sum(qv * idf_by_term[t] for t, qv in present)
    if mode == "query_self_score":
        if params is None:
            raise ValueError("query_self_score needs the BM25 parameters")
        length = sum(query.values)
        norm = params.k1 * (1.0 - params.b + params.b * length / params.avgdl)
        return sum(qv * idf_by_term[t] * qv / (qv + norm) for t, qv in present)
    raise ValueError(f"unknown BM25 normalization {mode!r}; known: {NORMALIZATIONS}")


def normalise(raw: float, bound: float) -> float:
    if bound <= 0.0:
        return 0.0
    return min(max(raw / bound, 0.0), 1.0)
