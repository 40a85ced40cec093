"""Re-indexing is idempotent; an index built by another model is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexing.bundle import Bundle
from indexing.encoder import OnnxEncoder
from indexing.errors import IndexMismatchError
from indexing.incidents import Incident
from indexing.indexer import index_incidents
from indexing.store.edge import EdgeStore
from service.engine import Engine, SimilarQuery
from service.settings import Settings


def test_reindex_keeps_count_and_scores(tmp_path: Path, minilm_bundle: Bundle, encoder: OnnxEncoder,
                                        incidents: list[Incident]) -> None:
    subset = incidents[:120]
    settings = Settings(data_dir=tmp_path, bundle_path=minilm_bundle.path)
    store = EdgeStore(settings.edge_index_dir)
    meta1 = index_incidents(subset, minilm_bundle, encoder, store, page_size=32, progress=False)
    store.close()

    def answer() -> list[tuple[str, float]]:
        engine = Engine.from_settings(settings)
        try:
            res = engine.similar(SimilarQuery(text=subset[7].text(), top_k=10)).results
            return [(r.payload["number"], r.score) for r in res], engine.store.count()
        finally:
            engine.close()

    first, count1 = answer()
    store = EdgeStore(settings.edge_index_dir)
    meta2 = index_incidents(subset, minilm_bundle, encoder, store, page_size=32, progress=False)
    store.close()
    second, count2 = answer()
    assert meta1 == meta2  # same index version, same avgdl
    assert count1 == count2 == 120
    assert [n for n, _ in first] == [n for n, _ in second]
    assert [s for _, s in first] == pytest.approx([s for _, s in second], abs=1e-6)


def test_index_of_another_model_is_refused(tmp_path: Path, minilm_bundle: Bundle, encoder: OnnxEncoder,
                                           incidents: list[Incident]) -> None:
    from dataclasses import replace

    from indexing.store.base import IndexMeta

    store = EdgeStore(tmp_path / "idx")
    index_incidents(incidents[:10], minilm_bundle, encoder, store, progress=False)
    meta = store.meta()
    assert isinstance(meta, IndexMeta)
    # a new bundle version with the same encoder (e.g. a recalibrated threshold) may use the index
    recalibrated = Bundle(path=minilm_bundle.path, manifest={**minilm_bundle.manifest, "model_version": "recal"})
    index_incidents(incidents[:10], recalibrated, encoder, store, progress=False)
    files = {**minilm_bundle.manifest["files"], "encoder/model.onnx": {"sha256": "0" * 64, "bytes": 1}}
    other = Bundle(path=minilm_bundle.path, manifest={**minilm_bundle.manifest, "model_version": "other-model",
                                                      "files": files})
    with pytest.raises(IndexMismatchError, match="its vectors mean something else"):
        index_incidents(incidents[:10], other, encoder, store, progress=False)
    assert store.count() == 10  # nothing lost
    assert replace(meta) == store.meta()
    store.close()
