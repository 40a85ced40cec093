"""Incident stores: one small interface, one adapter per Qdrant deployment."""

from indexing.store.base import IncidentStore, IndexMeta, IndexPoint, StoredIncident

__all__ = ["IncidentStore", "IndexMeta", "IndexPoint", "StoredIncident"]
