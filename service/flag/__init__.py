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
from service.flag.online import AdaptiveThreshold
from service.flag.recalibration import Recalibrator
from service.flag.watch import FlagWatch, Promise, calibration_promise

if TYPE_CHECKING:
    from indexing.bundle import Bundle
    from service.engine import Engine
    from service.metrics import Metrics
    from service.settings import Settings
    from service.versions.switcher import ModelSwitcher

logger = logging.getLogger(__name__)

__all__ = ["AdaptiveThreshold", "AnswerLog", "AnswerRecord", "FeedbackRecord", "FeedbackStore", "FileFeedbackStore",
           "FlagWatch", "Promise", "QdrantFeedbackStore", "Recalibrator", "Verdict", "build_flag_watch",
           "build_recalibrator", "calibration_promise", "feedback_store_for", "online_rule", "payload_fetcher"]


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
                     duplicate_share=settings.flag_duplicate_share, metrics=metrics,
                     online=online_rule(settings, engine.bundle))


def online_rule(settings: Settings, bundle: Bundle) -> AdaptiveThreshold | None:
    """The online threshold rule when Settings.flag_online_rule turns it on, started at the bundle's threshold."""
    if settings.flag_online_rule != "aci":
        return None
    target = bundle.threshold_target
    rate = float(target["target"]) if target and target.get("unit") == "incident_false_alarm" else 0.05
    return AdaptiveThreshold(rate, bundle.threshold, gamma=settings.flag_aci_gamma, window=settings.flag_aci_window)


def build_recalibrator(settings: Settings, engine: Engine, watch: FlagWatch,
                       switcher: ModelSwitcher | None) -> Recalibrator:
    return Recalibrator(watch, lambda: engine.bundle, engine.registry, switcher,
                        min_answers=settings.flag_recalibrate_min_answers)


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
