"""Request and response bodies of the HTTP API (with examples for the OpenAPI document)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class SimilarRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "short_description": "VPN connection fails with certificate error",
        "description": "Since this morning the VPN client refuses to connect: certificate not valid.",
        "top_k": 5,
        "exclude": ["INC0012345"],
    }]})

    short_description: StrictStr | None = Field(None, description="The new incident's short description.")
    description: StrictStr | None = Field(None, description="The new incident's description.")
    text: StrictStr | None = Field(None, description="Free text instead of short_description/description.")
    top_k: StrictInt = Field(5, ge=1, le=50, description="How many similar incidents to return (1-50).")
    exclude: list[StrictStr] = Field(default_factory=list, max_length=100,
                                     description="Incident numbers never to return (e.g. the incident itself).")


class SimilarIncident(BaseModel):
    number: str
    short_description: str
    score: float = Field(description="0.7 * dense + 0.3 * bm25, exactly (bundle weights).")
    dense: float = Field(description="Cosine similarity of the embeddings.")
    bm25: float = Field(description="Normalised BM25 in [0, 1], independent of the other results.")
    similar: bool = Field(description="score >= threshold.")


class SimilarResponse(BaseModel):
    results: list[SimilarIncident]
    threshold: float
    threshold_source: str = Field(description="'calibrated' or 'uncalibrated_default' (not tuned yet).")
    model_version: str
    index_version: str
    truncated: bool = Field(description="The query text was cut at the model's max sequence length.")
    exact: bool = Field(description="The top-k is certified to be the exact hybrid top-k.")


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ReadyResponse(BaseModel):
    ready: bool
    reason: str
    model_version: str
    index_version: str | None
