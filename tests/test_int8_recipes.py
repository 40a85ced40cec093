"""The INT8 recipe table: a recorded search outcome is reused only for the same model checksum, CPU features and
ONNX Runtime, and its parity is still measured on every build (a broken INT8 export with a matching entry falls
back to the full search, and to FP32 when nothing keeps parity). Real export, real quantisation, real parity."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_quantization import broken_copy

from indexing.bundle import Bundle, load_bundle
from training import int8_recipes
from training.export import RECIPES, REUSE_PARITY_TEXTS, reuse_sample


@pytest.fixture(scope="module")
def recorded_table(minilm_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The table the session's MiniLM bundle build wrote beside its bundle (its full search's outcome)."""
    source = minilm_bundle.path.parent / int8_recipes.LOCAL_TABLE_NAME
    assert source.is_file(), "a full search that ships INT8 must record its outcome beside the bundles"
    copy = tmp_path_factory.mktemp("recipes") / "table.json"
    shutil.copy(source, copy)
    return copy


def only_entry(table: Path) -> int8_recipes.RecordedRecipe:
    entries = int8_recipes.read_table(table)
    assert len(entries) == 1
    return entries[0]


def test_the_recorded_entry_describes_what_shipped(minilm_bundle: Bundle, minilm_dir: Path,
                                                   recorded_table: Path) -> None:
    entry = only_entry(recorded_table)
    quantization = minilm_bundle.manifest["encoder"]["quantization"]
    assert entry.recipe == quantization["name"]
    assert entry.int8_sha256 == minilm_bundle.manifest["files"]["encoder/model.onnx"]["sha256"]
    assert entry.key.matches(int8_recipes.key_for(minilm_dir))
    assert entry.parity["mean_cosine"] == minilm_bundle.manifest["parity"]["mean_cosine"]
    assert entry.worst_texts and len(entry.worst_texts) <= int8_recipes.WORST_TEXTS_KEPT


def test_an_entry_matches_only_the_same_model_cpu_and_runtime(minilm_dir: Path, recorded_table: Path,
                                                               tmp_path: Path) -> None:
    entry = only_entry(recorded_table)
    key = int8_recipes.key_for(minilm_dir)
    assert int8_recipes.find(key, [recorded_table]) is not None
    other_cpu = replace(key, cpu_features={**key.cpu_features, "avx512_vnni": not key.cpu_features["avx512_vnni"]})
    other_model = replace(key, model_sha256="0" * 64)
    other_runtime = replace(key, onnxruntime="0.0.1")
    for mismatch in (other_cpu, other_model, other_runtime):
        assert int8_recipes.find(mismatch, [recorded_table]) is None
    # a table with an entry for another CPU only: not used; a corrupt table: ignored, not fatal
    foreign = tmp_path / "foreign.json"
    int8_recipes.record(foreign, replace(entry, key=other_cpu))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    assert int8_recipes.find(key, [corrupt, foreign]) is None
    assert int8_recipes.find(key, [corrupt, foreign, recorded_table]) is not None


def test_reuse_sample_keeps_the_worst_texts_and_spreads_the_rest() -> None:
    worst = [900, 5, 17, 5]
    chosen = reuse_sample(1000, worst, size=20)
    assert len(chosen) == 20 and {900, 5, 17} <= set(chosen) and chosen == sorted(chosen)
    assert reuse_sample(10, [3], size=REUSE_PARITY_TEXTS) == list(range(10))


def test_a_matching_entry_is_reused_with_its_parity_measured_again(minilm_dir: Path, recorded_table: Path,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import training.export as export
    from training.bundle_writer import write_bundle

    quantised: list[str] = []
    real = export.quantize_int8

    def counting(fp32: Path, int8: Path, recipe: Any) -> dict[str, Any]:
        quantised.append(recipe.name)
        return real(fp32, int8, recipe)

    monkeypatch.setattr(export, "quantize_int8", counting)
    entry = only_entry(recorded_table)
    bundle = load_bundle(write_bundle(minilm_dir, tmp_path / "bundles", "reused", "minilm", parity_sample=64,
                                      recipe_tables=[recorded_table]))
    search = bundle.manifest["encoder"]["quantization_search"]
    assert quantised == [entry.recipe], "only the recorded recipe is exported"
    assert search["mode"] == "recorded" and search["identical_to_recorded"] is True
    parity = bundle.manifest["parity"]
    assert parity["measured"] and parity["passed"] and parity["n_texts"] == 64  # 64 < REUSE_PARITY_TEXTS: all
    assert set(entry.worst_texts) <= set(range(64))
    assert "byte-identical" in parity["retrieval"]["measured"]
    assert bundle.manifest["encoder"]["precision"] == "int8"
    assert bundle.manifest["files"]["encoder/model.onnx"]["sha256"] == entry.int8_sha256
    # nothing new recorded: the table beside the new bundle stays empty
    assert not (tmp_path / "bundles" / int8_recipes.LOCAL_TABLE_NAME).exists()


def test_a_matching_entry_whose_export_is_broken_falls_back_to_fp32(minilm_dir: Path, recorded_table: Path,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Every INT8 model is broken before its parity is measured (the real measurement): the recorded recipe is
    rejected, the full search runs and rejects every recipe, and FP32 ships."""
    import training.export as export
    from training.bundle_writer import write_bundle

    real = export.measure_parity

    def measure_broken(fp32: Path, int8: Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return real(fp32, broken_copy(fp32, int8.with_name("broken.onnx")), *args, **kwargs)

    monkeypatch.setattr(export, "measure_parity", measure_broken)
    entry = only_entry(recorded_table)
    recipes = tuple(r for r in RECIPES if r.name == entry.recipe) + tuple(
        r for r in RECIPES if r.name != entry.recipe)[:1]
    bundle = load_bundle(write_bundle(minilm_dir, tmp_path / "bundles", "broken", "minilm", parity_sample=32,
                                      recipes=recipes, recipe_tables=[recorded_table]))
    m = bundle.manifest
    assert m["encoder"]["precision"] == "fp32" and not m["parity"]["passed"]
    search = m["encoder"]["quantization_search"]
    assert search["mode"] == "full search"
    assert search["recorded_recipe_rejected"]["rejected"] == "parity failed"
    assert not search["recorded_recipe_rejected"]["parity"]["passed"]
    assert json.loads(recorded_table.read_text())["entries"][0]["recipe"] == entry.recipe  # the table is untouched
