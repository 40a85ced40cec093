"""Keeping the flag honest: the recent-answer log, agents' feedback, the live watch of the flagged share
(README "Keeping the flag honest")."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from indexing.incidents import point_id_for
from service.flag.answers import AnswerLog, AnswerRecord
from service.flag.feedback import (
    FeedbackRecord,
    FeedbackStore,
    FileFeedbackStore,
    QdrantFeedbackStore,
    Verdict,
)
from service.flag.watch import FlagWatch, Promise, calibration_promise

if TYPE_CHECKING:
    from service.engine import Engine
    from service.metrics import Metrics
    from service.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["AnswerLog", "AnswerRecord", "FeedbackRecord", "FeedbackStore", "FileFeedbackStore", "FlagWatch",
           "Promise", "QdrantFeedbackStore", "Verdict", "build_flag_watch", "calibration_promise",
           "feedback_store_for", "payload_fetcher"]


def feedback_store_for(settings: Settings, engine: Engine) -> FeedbackStore:
    """On a Qdrant server: a collection every replica shares. Embedded: a log in the data directory, which one
    process owns (the index directory's CATALOG.lock)."""
    catalog = engine.catalog
    client = getattr(catalog, "client", None) if getattr(catalog, "shared", False) else None
    if client is not None:
        alias = getattr(catalog, "alias", settings.collection)
        return QdrantFeedbackStore(client, f"{alias}.feedback")
    return FileFeedbackStore(settings.data_dir / "flag" / settings.collection / "feedback.jsonl")


def build_flag_watch(settings: Settings, engine: Engine, metrics: Metrics | None = None) -> FlagWatch:
    answers = AnswerLog(settings.data_dir / "flag" / settings.collection, capacity=settings.flag_answer_log_size)
    return FlagWatch(lambda: engine.bundle, answers, feedback_store_for(settings, engine),
                     window=settings.flag_window, level=settings.flag_confidence,
                     duplicate_share=settings.flag_duplicate_share, metrics=metrics)


def payload_fetcher(engine: Engine, batch: int = 256) -> Any:
    """Incident numbers -> stored payloads, read from the serving index version (for the link checks)."""

    def fetch(numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
        version = engine.current
        ids = {point_id_for(n): n for n in numbers}
        keys = list(ids)
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), batch):
            for stored in version.store.fetch(keys[start:start + batch], with_vectors=False):
                out[str(stored.payload.get("number") or ids.get(stored.point_id))] = dict(stored.payload)
        return out

    return fetch
