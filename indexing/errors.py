"""Domain errors raised by the indexing layer. The service maps each to one HTTP status."""

from __future__ import annotations


class IncidentSimError(Exception):
    """Base class of every error this product raises on purpose."""


class BundleError(IncidentSimError):
    """A model bundle is missing, incomplete, corrupt or fails its quality bar."""


class UnknownBundleError(BundleError):
    """No bundle of this version in the registry."""


class InvalidVersionError(BundleError):
    """A bundle or index version name that is not a plain, safe name inside the registry."""


class InputDataError(IncidentSimError):
    """An incident file (CSV/JSON export) is malformed; the message names row and field."""


class StoreUnavailableError(IncidentSimError):
    """The incident store (Qdrant Edge shard or Qdrant server) cannot be reached."""


class IndexMissingError(StoreUnavailableError):
    """No index version exists yet (nothing indexed)."""


class IndexLockedError(StoreUnavailableError):
    """The embedded index is held by another process (Qdrant Edge allows one)."""


class IndexMismatchError(IncidentSimError):
    """The index was built with another model bundle than the one loaded."""


class InvalidQueryError(IncidentSimError):
    """A query or incident that is well-formed but cannot be answered or stored as asked (the message says why)."""


class IncidentNotFoundError(IncidentSimError):
    """No stored incident has this number."""


class SwapInProgressError(IncidentSimError):
    """A model rebuild is already running; wait for it."""


class SwapRefusedError(IncidentSimError):
    """The requested model switch cannot be done (already serving, nothing to roll back to)."""


class NotWritableError(StoreUnavailableError):
    """The index cannot take writes (disk full or under the reserve, read-only storage); reads still work."""


class PointerLostError(StoreUnavailableError):
    """The pointer naming the serving index version and its last good copy are both unusable while index
    versions exist: nothing serves until an operator names the version (the message says how)."""
