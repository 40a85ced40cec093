"""A store that could not even be opened: every call raises the reason, so the service starts, reports not ready
and answers 503 instead of failing to start (service.wiring builds it)."""

from __future__ import annotations

from typing import Any

from indexing.errors import StoreUnavailableError
from indexing.store.base import IncidentStore


class UnavailableStore(IncidentStore):
    """Stands in for a store that could not even be opened, so the service can report 503s."""

    name = "unavailable"

    def __init__(self, reason: str, error: type[StoreUnavailableError] = StoreUnavailableError) -> None:
        self.reason = reason
        self.error = error

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error(self.reason)

    create_index = meta = upsert = delete = count = doc_freqs = search_dense = search_sparse = fetch = ping = _fail
    scroll = _fail

    def close(self) -> None:
        return None
