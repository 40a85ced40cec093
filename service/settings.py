"""The one settings class. Every value can be set by an environment variable INCIDENT_SIM_<NAME>."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INCIDENT_SIM_", env_file=None, extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where bundles and the embedded Qdrant Edge index live.")
    bundle_path: Path | None = Field(
        None, description="Bundle directory to serve; default: the newest under data_dir/bundles.")
    qdrant_url: str | None = Field(None, description="Qdrant server/cluster URL; unset = embedded Qdrant Edge.")
    qdrant_api_key: SecretStr | None = Field(None, description="API key for the Qdrant server.")
    qdrant_timeout_s: float = Field(5.0, gt=0)
    collection: str = Field("incidents", pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="Qdrant collection name.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Requests with a larger body get 413.")
    max_text_chars: int = Field(20_000, ge=100, description="Longest accepted text field, in characters.")
    max_top_k: int = Field(50, ge=1, le=1000)
    candidate_k: int = Field(100, ge=10, description="Dense and BM25 candidates fetched per query (grown if needed).")
    encoder_threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads (0 = all cores).")
    log_level: str = "INFO"

    @property
    def bundles_dir(self) -> Path:
        return self.data_dir / "bundles"

    @property
    def edge_index_dir(self) -> Path:
        return self.data_dir / "index" / self.collection
