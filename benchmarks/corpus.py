"""Incident corpora at sizes the encoder cannot reach on 2 cores, shared by the scale, notebook-stack and
end-to-end suites.

Texts: `--size` incidents from the sample generator (ServiceNow-shaped, clustered by problem, with
paraphrases, typos, hostnames), so BM25 sees real term statistics. Dense vectors: the first `real` incidents
are encoded by the bundle's real encoder (as the indexer does); every other incident gets a *generated* vector,
a noisy copy of a real one: normalise(v + sigma * g), g standard normal, with sigma set so that a copy's
cosine to its source equals the median nearest-neighbour cosine among the real vectors. The dense side thus
has the real vectors' geometry (same clusters, same nearest-neighbour similarity) without hours of encoding.
Queries are other generated incidents, encoded by the real encoder. Every suite says so in its output."""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexing import lexical
from indexing.bundle import Bundle
from indexing.dense_text import TextEncoder
from indexing.incidents import Incident
from indexing.indexer import new_index_version
from indexing.registry import BundleRegistry
from indexing.store.base import IndexMeta, IndexPoint
from indexing.store.edge import GraphConfig
from indexing.store.edge_catalog import EdgeCatalog
from service.settings import Settings
from training.data.sample import generate_incidents

logger = logging.getLogger(__name__)

CORPUS_SEED = 17
QUERY_SEED = 4242  # benchmarks.latency's queries


@dataclass
class Corpus:
    incidents: list[Incident]
    vectors: np.ndarray  # (n, dim) float32, L2-normalised
    real: int  # the first `real` vectors come from the real encoder
    copy_cosine: float  # target cosine of a generated vector to its real source
    encode_seconds: float  # encoding the real subset
    queries: list[Incident] = field(default_factory=list)
    query_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    copies: str = "text"  # a generated vector's source: the textually nearest real incident, or a random one

    def head(self, n: int) -> Corpus:
        """The first `n` incidents (corpora of several sizes share their real subset and queries)."""
        return Corpus(self.incidents[:n], self.vectors[:n], min(self.real, n), self.copy_cosine, self.encode_seconds,
                      self.queries, self.query_vectors, self.copies)

    def describe(self) -> str:
        n = len(self.incidents)
        if self.real >= n:
            return f"{n} generated sample incidents, every one encoded by the real encoder"
        source = ("the real incident nearest in text (TF-IDF cosine)" if self.copies == "text"
                  else "a random real incident (text and vector unrelated)")
        return (f"{n} generated sample incidents: {self.real} encoded by the real encoder, {n - self.real} with "
                f"generated vectors (noisy copies of the vector of {source}, cosine to the source "
                f"{self.copy_cosine:.3f} = the real vectors' median nearest-neighbour cosine); BM25 from every "
                "incident's real text; queries encoded by the real encoder")


_ENCODED: dict[tuple[str, int, str], tuple[np.ndarray, float]] = {}


def encode_incidents(bundle: Bundle, encoder: TextEncoder, incidents: list[Incident], seed: int,
                     desc: str) -> tuple[np.ndarray, float]:
    """Real vectors of `incidents` (the bundle's dense text), remembered for the run."""
    texts = hashlib.sha256("\x00".join(i.text() for i in incidents).encode()).hexdigest()
    key = (str(bundle.path), seed, texts)
    if key not in _ENCODED:
        t0 = time.perf_counter()
        parts = []
        with tqdm(total=len(incidents), desc=desc, unit="inc") as bar:
            for start in range(0, len(incidents), 64):
                batch = incidents[start : start + 64]
                parts.append(bundle.dense_text.embed(encoder, [(i.short_description, i.description)
                                                               for i in batch], 32).vectors)
                bar.update(len(batch))
        _ENCODED[key] = (np.concatenate(parts).astype(np.float32), time.perf_counter() - t0)
    return _ENCODED[key]


def median_nn_cosine(vectors: np.ndarray) -> float:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -2.0)
    return float(np.median(sims.max(axis=1)))


def noisy_copies(real: np.ndarray, n: int, cosine: float, seed: int, out: np.ndarray | None = None,
                 sources: np.ndarray | None = None) -> np.ndarray:
    """`n` unit vectors, each normalise(source + sigma * g), sigma chosen so that the expected cosine to the
    source is `cosine` (|g|^2 ~ dim * sigma^2). The source of copy i is real[sources[i]], or a random real
    vector without `sources`."""
    dim = real.shape[1]
    sigma = float(np.sqrt((1.0 / cosine**2 - 1.0) / dim))
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32) if out is None else out  # `out`: fill a slice of a bigger array in place
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        picks = rng.integers(0, len(real), m) if sources is None else sources[start : start + m]
        block = real[picks] + sigma * rng.standard_normal((m, dim), dtype=np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def nearest_by_text(analyzer: lexical.Analyzer, incidents: list[Incident], references: list[Incident],
                    chunk: int = 20_000) -> np.ndarray:
    """For each incident, the index of the reference incident whose text is most like its own (cosine of TF-IDF
    term vectors, the BM25 analyzer's terms). A generated vector copied from that reference keeps the link
    between an incident's words and its vector that real embeddings have (textually similar incidents get
    similar vectors), which a random source breaks."""
    from scipy import sparse

    vocabulary: dict[str, int] = {}

    def matrix(rows: list[Incident]) -> sparse.csr_matrix:
        indptr, indices = [0], []
        for incident in rows:
            terms = {vocabulary.setdefault(t, len(vocabulary))
                     for t in analyzer.document_tokens(incident.short_description, incident.description)}
            indices.extend(sorted(terms))
            indptr.append(len(indices))
        return sparse.csr_matrix((np.ones(len(indices), np.float32), indices, indptr),
                                 shape=(len(rows), 1 << 24))

    ref = matrix(references)
    idf = np.log((1 + len(references)) / (1 + np.bincount(ref.indices, minlength=ref.shape[1]))).astype(np.float32)

    by_idf = sparse.diags(idf)

    def weighted(m: sparse.csr_matrix) -> sparse.csr_matrix:
        m = (m @ by_idf).tocsr()
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        return (sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ m).tocsr()

    ref_t = weighted(ref).T.tocsc()
    out = np.empty(len(incidents), np.int64)
    for start in range(0, len(incidents), chunk):
        block = weighted(matrix(incidents[start : start + chunk]))
        out[start : start + chunk] = np.asarray((block @ ref_t).argmax(axis=1)).ravel()
    return out


COPIES = ("text", "random")


def build_corpus(bundle: Bundle, encoder: TextEncoder, size: int, real: int, queries: int,
                 copies: str = "text") -> Corpus:
    """`copies`: where a generated vector comes from (`text`: the real incident nearest in text, so words and
    vectors agree as they do in real data; `random`: any real incident, the worst case for the hybrid
    certificate: what BM25 finds, the vectors do not)."""
    if copies not in COPIES:
        raise ValueError(f"copies is one of {COPIES}, got {copies!r}")
    rows = generate_incidents(size, seed=CORPUS_SEED)
    incidents = [Incident.model_validate(r) for r in rows]
    real = min(real, size)
    real_vectors, seconds = encode_incidents(bundle, encoder, incidents[:real], CORPUS_SEED, "encoding real subset")
    cosine = median_nn_cosine(real_vectors[: min(real, 5000)])
    seed = int(hashlib.sha256(f"{bundle.model_version}:{size}".encode()).hexdigest()[:8], 16)
    vectors = real_vectors
    if real < size:  # one array, filled in place (1M x 768 floats is 3 GB)
        vectors = np.empty((size, real_vectors.shape[1]), np.float32)
        vectors[:real] = real_vectors
        sources = None
        if copies == "text":
            t0 = time.perf_counter()
            sources = nearest_by_text(lexical.Analyzer.from_name(bundle.bm25["analyzer"]), incidents[real:],
                                      incidents[:real])
            logger.info("nearest real incident by text for %d incidents: %.1f s", size - real, time.perf_counter() - t0)
        noisy_copies(real_vectors, size - real, cosine, seed, out=vectors[real:], sources=sources)
    query_incidents = [Incident.model_validate(r) for r in generate_incidents(queries, seed=QUERY_SEED)]
    query_vectors, _ = encode_incidents(bundle, encoder, query_incidents, QUERY_SEED, "encoding queries")
    return Corpus(incidents, vectors, real, cosine, seconds, query_incidents, query_vectors, copies)


def bm25_for(bundle: Bundle, incidents: list[Incident]) -> lexical.BM25Encoder:
    """The BM25 encoder an index of `incidents` gets (avgdl from them, the bundle's analyzer and bound)."""
    analyzer = lexical.Analyzer.from_name(bundle.bm25["analyzer"])
    avgdl = lexical.average_document_length(analyzer, [(i.short_description, i.description) for i in incidents])
    return lexical.BM25Encoder(analyzer, lexical.BM25Params(float(bundle.bm25["k1"]), float(bundle.bm25["b"]),
                                                            avgdl), max_query_terms=bundle.max_query_terms)


def points(corpus: Corpus, bm25: lexical.BM25Encoder, page: int) -> Iterator[list[IndexPoint]]:
    for start in range(0, len(corpus.incidents), page):
        yield [IndexPoint(i.point_id, corpus.vectors[start + k], bm25.document(i.short_description, i.description),
                          i.payload()) for k, i in enumerate(corpus.incidents[start : start + page])]


@dataclass
class BuiltIndex:
    data_dir: Path  # a service data directory: the bundle active in its registry, this index active in its catalog
    index_dir: Path  # the index version's directory (EdgeStore)
    incidents: int
    graph: GraphConfig
    upsert_seconds: float
    optimize_seconds: float


def build_data_dir(root: Path, bundle: Bundle, corpus: Corpus, graph: GraphConfig | None = None,
                   page: int = 1000) -> BuiltIndex:
    """A service data directory under `root` serving the corpus: the bundle published and active, one index
    version built as the indexer builds one (pages of upserts, then optimize) and switched to."""
    settings = Settings(data_dir=root, dev_mode=True)
    registry = BundleRegistry(settings.bundles_dir)
    registry.publish(bundle.path, allow_uncalibrated=True)
    registry.set_active(bundle.model_version)
    graph = graph or GraphConfig()
    catalog = EdgeCatalog(settings.edge_index_dir, graph=graph)
    bm25 = bm25_for(bundle, corpus.incidents)
    name = new_index_version(bundle)
    store = catalog.create(name)
    store.create_index(IndexMeta(index_version=name, model_version=bundle.model_version,
                                 encoder_id=bundle.encoder_id, dim=bundle.dim, analyzer=bm25.analyzer.name,
                                 k1=bm25.params.k1, b=bm25.params.b, avgdl=bm25.params.avgdl,
                                 created_at=datetime.now(UTC).isoformat()))
    t0 = time.perf_counter()
    with tqdm(total=len(corpus.incidents), desc=f"upserting {len(corpus.incidents)}", unit="inc") as bar:
        for batch in points(corpus, bm25, page):
            store.upsert(batch)
            bar.update(len(batch))
    upsert = time.perf_counter() - t0
    logger.info("optimizing %d incidents (HNSW %s)", len(corpus.incidents), graph.describe())
    t0 = time.perf_counter()
    store.optimize()
    optimize = time.perf_counter() - t0
    store.close()
    catalog.mark_complete(name)
    catalog.switch(name)
    return BuiltIndex(root, catalog.version_dir(name), len(corpus.incidents), graph, upsert, optimize)


class IndexCache:
    """Data directories built once per (size, graph) in a run and shared by the suites."""

    def __init__(self, root: Path, bundle: Bundle, corpus: Corpus) -> None:
        self.root, self.bundle, self.corpus = root, bundle, corpus
        self._built: dict[tuple[int, GraphConfig], BuiltIndex] = {}

    def get(self, size: int, graph: GraphConfig | None = None) -> BuiltIndex:
        graph = graph or GraphConfig()
        key = (size, graph)
        if key not in self._built:
            where = self.root / (f"data-{size}-m{graph.m}-ef{graph.ef_construct}{'-int8' if graph.int8 else ''}"
                                 f"{'-disk' if graph.vectors_on_disk else ''}")
            self._built[key] = build_data_dir(where, self.bundle, self.corpus.head(size), graph)
        return self._built[key]

    def drop(self, size: int, graph: GraphConfig | None = None) -> None:
        built = self._built.pop((size, graph or GraphConfig()), None)
        if built is not None:
            shutil.rmtree(built.data_dir, ignore_errors=True)


def disk_bytes(path: Path, under: str | None = None) -> int:
    """Bytes of the files under `path` (with `under`: only those inside a directory of that name)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and (under is None or under in f.parts))


def bundle_or_minilm(path: Path | None, where: Path) -> Bundle:
    """The bundle at `path`, else a MiniLM INT8 bundle built under `where` from its package (fast; the suites
    name the bundle they measured)."""
    if path is not None:
        from indexing.bundle import load_bundle

        return load_bundle(path)
    from benchmarks.compaction import minilm_bundle

    return minilm_bundle(where)


def corpus_cache(bundle: Bundle, root: Path, sizes: list[int], real: int, queries: int,
                 copies: str = "text") -> IndexCache:
    """The corpus for the largest of `sizes` (its real subset and queries encoded now) and an empty index cache."""
    from indexing.encoder import OnnxEncoder

    encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length)
    return IndexCache(root / "indexes", bundle, build_corpus(bundle, encoder, max(sizes), real, queries, copies))


def add_corpus_arguments(parser: Any, sizes: str) -> None:
    """The options every corpus-based suite takes (bundle, sizes, real subset, where results go)."""
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: MiniLM built from its package)")
    parser.add_argument("--sizes", default=sizes, help="corpus sizes, comma-separated")
    parser.add_argument("--real", type=int, default=2000, help="incidents encoded by the real encoder")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--copies", choices=COPIES, default="text",
                        help="source of each generated vector: the real incident nearest in text (default) or a "
                             "random one (text and vector unrelated: the hybrid certificate's worst case)")
