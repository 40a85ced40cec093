"""The one settings class. Every value can be set by an environment variable INCIDENT_SIM_<NAME>
(lists and objects as JSON, e.g. INCIDENT_SIM_API_KEYS='[{"name": "servicenow", "key": "...",
"scopes": ["query", "write"]}]')."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Scope(StrEnum):
    """What an API key may do. `admin` implies the other two."""

    query = "query"  # POST /similar
    write = "write"  # PUT/DELETE /incidents, POST /incidents/bulk
    admin = "admin"  # model management


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, description="Who holds the key (logged, unlike the key).")
    key: SecretStr = Field(description="The secret itself (at least 16 characters outside dev mode).")
    scopes: frozenset[Scope] = Field(min_length=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INCIDENT_SIM_", env_file=None, extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where bundles and the embedded Qdrant Edge index live.")
    bundle_path: Path | None = Field(
        None, description="Bundle directory to serve; default: the newest under data_dir/bundles.")
    qdrant_url: str | None = Field(None, description="Qdrant server/cluster URL; unset = embedded Qdrant Edge.")
    qdrant_api_key: SecretStr | None = Field(None, description="API key for the Qdrant server.")
    qdrant_timeout_s: float = Field(5.0, gt=0)
    qdrant_shards: int = Field(1, ge=1, le=1024, description="Qdrant server: shards of each new index version's "
                               "collection. Keep 1 for exact BM25 (Qdrant's IDF is per shard; README 'Scaling out').")
    qdrant_replication_factor: int = Field(1, ge=1, le=16, description="Qdrant server: copies of each shard.")
    qdrant_write_consistency: int = Field(1, ge=1, le=16, description="Qdrant server: replicas that must have a "
                                          "write before it is acknowledged (= replication factor: no acknowledged "
                                          "write lives on one node only).")
    collection: str = Field("incidents", pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="Qdrant collection name.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # -- auth ---------------------------------------------------------------------------------
    api_keys: Annotated[list[ApiKey], NoDecode] = Field(default_factory=list,
                                                        description="Accepted API keys (several, for rotation).")
    dev_mode: bool = Field(False, description="Allow placeholder keys, and no keys at all (auth off), for local use.")
    protect_metrics: bool = Field(False, description="/metrics needs a valid key of any scope.")
    basic_user: str | None = Field(None, min_length=1, max_length=64, description="HTTP Basic: the user name "
                                   "ServiceNow sends; the password is one of the API keys (its scopes apply). "
                                   "Unset: Basic is refused.")
    oauth_issuer: str | None = Field(None, description="OAuth 2.0: accept bearer JWTs from this issuer (`iss`).")
    oauth_audience: str | None = Field(None, description="OAuth 2.0: the `aud` the tokens must carry (required "
                                       "with oauth_issuer).")
    oauth_jwks_url: str | None = Field(None, description="OAuth 2.0: the issuer's JWKS URL (keys fetched, cached "
                                       "5 min).")
    oauth_public_key: str | None = Field(None, description="OAuth 2.0: a PEM public key instead of a JWKS URL.")
    oauth_scope_prefix: str = Field("", max_length=64, description="OAuth 2.0: token scopes are <prefix>query, "
                                    "<prefix>write, <prefix>admin (e.g. 'incident-sim.').")
    # -- limits -------------------------------------------------------------------------------
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Requests with a larger body get 413.")
    max_text_chars: int = Field(20_000, ge=100, description="Longest accepted text field (short_description, "
                                "description, close_notes, a /similar text), in characters.")
    max_field_chars: int = Field(512, ge=16, le=100_000, description="Longest accepted keyword field of an incident "
                                 "or a filter (category, subcategory, cmdb_ci, assignment_group, state, sys_id, "
                                 "problem_id, duplicate_of, parent_incident), in characters.")
    max_top_k: int = Field(50, ge=1, le=1000)
    max_bulk_incidents: int = Field(100, ge=1, le=10_000, description="Most incidents in one POST /incidents/bulk.")
    max_in_flight: int = Field(16, ge=1, description="Requests doing work at once; beyond it 429 + Retry-After.")
    max_in_flight_unauthenticated: int = Field(
        4, ge=1, description="Requests to the routes without a key (/healthz, /readyz, /metrics, /docs, unknown paths) "
        "worked on at once, a budget of their own: probes and scrapes never take a slot of keyed traffic.")
    body_read_timeout_s: float = Field(10.0, gt=0, le=600, description="A request body must arrive within this many "
                                       "seconds of the request's headers, else 408 (a client trickling its body "
                                       "holds nothing for longer).")
    keep_alive_timeout_s: int = Field(5, ge=1, le=600, description="uvicorn: an idle keep-alive connection is "
                                      "closed after this many seconds.")
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024, description="uvicorn (h11): the most bytes "
                                  "of a request line and headers; beyond it the connection is refused.")
    retry_after_s: int = Field(1, ge=1, description="Retry-After sent with 429.")
    graceful_shutdown_s: float = Field(15.0, ge=0, description="How long shutdown waits for in-flight requests.")
    candidate_k: int = Field(100, ge=10, description="Dense and BM25 candidates fetched per query (grown if needed).")
    encoder_threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads (0 = all cores).")
    encoder_spinning: bool = Field(False, description="Let idle ONNX Runtime threads spin (lower latency one "
                                   "request at a time, worse under concurrency on few cores).")
    encoder_token_budget: int = Field(1024, ge=0, le=65_536, description="Most padded tokens in one ONNX Runtime "
                                      "run of a bulk encode (index, push batches, sync pages, rebuilds): texts are "
                                      "sorted by token length and batched by this budget, not by count; 0 = by "
                                      "count only. Onboarding throughput per budget: benchmarks/results/"
                                      "onboarding.md.")
    encode_max_batch: int = Field(1, ge=1, le=256, description="Most /similar queries encoded together in one "
                                  "ONNX Runtime run (1 = each query alone, the default: with mpnet on 2 cores "
                                  "batching cost throughput; it helps small encoders, benchmarks.concurrency).")
    query_cache_size: int = Field(1024, ge=0, description="Recent /similar query texts whose embedding is kept "
                                  "(a retried call is not encoded again); 0 = no cache.")
    max_query_tokens: int | None = Field(None, ge=8, le=4096, description="Read at most this many tokens of a "
                                         "/similar query (unset: the model's limit, 384 for all-mpnet-base-v2); "
                                         "stored incidents keep the full length. Quality and latency per cap: "
                                         "benchmarks/results/query-tokens.md.")
    encode_window_ms: float = Field(2.0, ge=0, le=50, description="How long the batcher waits for requests already "
                                    "in flight to join a batch (never with one request in flight).")
    hnsw_m: int = Field(16, ge=4, le=128, description="Qdrant Edge: HNSW links per vector in new index versions "
                        "(index, rebuild, compaction); more: better recall, slower builds (benchmarks.scale).")
    hnsw_ef_construct: int = Field(100, ge=8, le=1000, description="Qdrant Edge: HNSW build candidates per vector "
                                   "in new index versions; the graph's build time grows with it.")
    index_int8: bool = Field(False, description="Qdrant Edge: keep scalar int8 copies of the vectors in new index "
                             "versions (searched first, rescored with the float32 vectors: scores stay exact).")
    index_vectors_on_disk: bool = Field(False, description="Qdrant Edge: leave the float32 vectors of new index "
                                        "versions on disk, read on demand; with INCIDENT_SIM_INDEX_INT8 the int8 "
                                        "copies stay in RAM and rescoring reads the originals it needs (scores "
                                        "stay exact; memory per incident: benchmarks/results/scale-*.md).")
    index_warm_on_open: bool = Field(True, description="Qdrant Edge: when the service opens an index version (start, "
                                     "switch, rollback), read its files into the page cache in the background, so "
                                     "the first queries do not wait on the disk (indexing/store/edge_warm.py).")
    rebuild_page_size: int = Field(256, ge=1, le=4096, description="Incidents re-embedded per page in a rebuild "
                                   "(sorted by token length within it; written 64 per hold of the write lock).")
    index_versions_kept: int = Field(2, ge=1, description="Index versions kept (active + rollback targets).")
    compact_after_writes: int = Field(
        1000, ge=0, description="Qdrant Edge: compact the index (fresh HNSW, deletes vacuumed) in the background "
        "after this many incident writes; 0 = never in the background (POST /admin/index/compact still works).")
    compact_idle_writes: int = Field(50, ge=1, description="... or after this many writes once the service has "
                                     "had no write for compact_idle_s seconds.")
    compact_idle_s: float = Field(300.0, gt=0, description="Seconds without a write that count as idle.")
    compact_drain_s: float = Field(30.0, ge=0, description="How long a replaced index version stays open for the "
                                   "requests that started on it.")
    min_free_disk_mb: int = Field(256, ge=0, description="Qdrant Edge: incident writes are refused (503, readiness "
                                  "not_writable) while the disk holding the index has less free space than this; "
                                  "a rebuild or compaction also needs room for a copy of the index. Qdrant Edge "
                                  "writes through memory maps: a write into a full disk would kill the process.")
    # -- ServiceNow sync (incident-sim sync servicenow) -------------------------------------------
    servicenow_instance: str | None = Field(None, description="The instance URL, e.g. https://acme.service-now.com.")
    servicenow_user: str | None = Field(None, description="Basic auth user with read access to incident and "
                                        "sys_audit_delete.")
    servicenow_password: SecretStr | None = None
    servicenow_token: SecretStr | None = Field(None, description="OAuth bearer token instead of user/password.")
    sync_page_size: int = Field(200, ge=1, le=10_000, description="Incidents per Table API page.")
    sync_overlap_s: float = Field(60.0, ge=0, description="Each sync re-reads this many seconds before its saved "
                                  "cursor (late commits); rows it already wrote are skipped.")
    sync_max_retries: int = Field(5, ge=0, description="Retries of a Table API call on 429, 5xx or a timeout.")
    sync_service_url: str | None = Field(None, description="Sync through this running service's API instead of "
                                         "into the data directory.")
    sync_api_key: SecretStr | None = Field(None, description="A key with the write scope, for sync_service_url.")
    replica_follow_s: float = Field(2.0, gt=0, le=60, description="Qdrant server with several replicas: a replica "
                                    "notices a model switch made by another within this many seconds (writes "
                                    "check on every write).")
    replica_grace_s: float = Field(2.0, ge=0, le=120, description="Qdrant server: a replica starting a rebuild "
                                   "waits this long after telling the others before copying (writes already under "
                                   "way finish first; a reconciliation pass catches any slower one).")
    # -- the flag watch (README "Keeping the flag honest") ----------------------------------------
    flag_window: int = Field(500, ge=10, le=100_000, description="The flagged share (metrics, GET /admin/threshold, "
                             "the alert) is computed on the last this many answers, one per incident number.")
    flag_answer_log_size: int = Field(10_000, ge=100, le=1_000_000, description="Recent /similar answers kept (in "
                                      "memory and in data_dir/flag/: best score, flag, model version, threshold, "
                                      "suggested numbers; no text).")
    flag_confidence: float = Field(0.95, ge=0.5, lt=1, description="Level of the Clopper-Pearson intervals of the "
                                   "flagged share and of the feedback precision.")
    flag_duplicate_share: float | None = Field(None, ge=0, le=1, description="Share of new incidents that have a "
                                               "true earlier duplicate, for the alert's promise (unset: from the "
                                               "bundle's calibration report).")
    flag_link_check_s: float = Field(60.0, ge=0, description="Every this many seconds, incidents asked about "
                                     "recently are checked for a duplicate_of / parent_incident / problem_id link "
                                     "recorded since (it becomes duplicate feedback); 0 = never.")
    flag_link_window_days: float = Field(14.0, gt=0, le=365, description="How long after an answer a link still "
                                         "counts as feedback on it.")
    flag_recalibrate_min_answers: int = Field(200, ge=1, le=1_000_000, description="POST "
                                              "/admin/threshold/recalibrate and `calibrate --live` refuse to apply "
                                              "a threshold chosen on fewer logged answers (a dry run still shows "
                                              "it).")
    flag_online_rule: Literal["off", "aci"] = Field("off", description="An online threshold rule: `aci` (adaptive "
                                                    "conformal inference) moves a live threshold after each answer "
                                                    "so the long-run flagged share of negatives tracks the target; "
                                                    "shown in GET /admin/threshold and applicable with "
                                                    "recalibrate {\"method\": \"aci\"}. Off until a replay says "
                                                    "it should ship by default.")
    flag_aci_gamma: float = Field(0.005, gt=0, le=0.5, description="Step size of the online rule's level.")
    flag_aci_window: int = Field(1000, ge=50, le=100_000, description="Negative best scores the online rule's "
                                 "quantile is taken over.")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = Field("json", description="Service logs: JSON lines or plain text.")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys_json(cls, value: Any) -> Any:
        # parsed here, not by pydantic-settings, so malformed JSON is one clear validation error, not a traceback
        # (the message never quotes the value: it holds keys)
        if isinstance(value, str | bytes):
            try:
                return json.loads(value) if value.strip() else []
            except ValueError as exc:
                raise ValueError(f"INCIDENT_SIM_API_KEYS is not valid JSON ({exc.__class__.__name__} at "
                                 f"position {getattr(exc, 'pos', '?')}); expected a list of "
                                 '{"name", "key", "scopes"} objects') from None
        return value

    @property
    def bundles_dir(self) -> Path:
        return self.data_dir / "bundles"

    @property
    def edge_index_dir(self) -> Path:
        return self.data_dir / "index" / self.collection
