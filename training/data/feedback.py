"""Agents' verdicts as training labels (`incident-sim train --feedback FILE`).

FILE is what GET /feedback pages out: one JSON page (`{"items": [...], ...}`), several pages one per line, or
one feedback record per line. Each record names `incident` (the new one), `suggested` (the earlier one) and a
`verdict`: `duplicate` (an agent's confirmation, or a link ServiceNow recorded) becomes a positive pair,
`not_similar` a hard negative of that incident; `related` is neither. A pair with both verdicts (from two
sources) is dropped as conflicting. Only incidents of the corpus's train split are used (training/pairs.py):
the gate still decides on the time-later test split with the corpus's own links."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexing.errors import InputDataError

logger = logging.getLogger(__name__)

VERDICTS = ("duplicate", "related", "not_similar")


@dataclass(frozen=True)
class TrainingFeedback:
    duplicates: tuple[tuple[str, str], ...]  # (incident, suggested), confirmed duplicates
    not_similar: dict[str, frozenset[str]]  # incident -> incidents an agent said are not similar (both ways)
    stats: dict[str, int] = field(default_factory=dict)

    def negatives_of(self, number: str) -> frozenset[str]:
        return self.not_similar.get(number, frozenset())


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(f"--feedback {path}: cannot read it ({exc})") from None
    try:  # one JSON document (a page, pretty-printed or not) ...
        documents: list[tuple[int, Any]] = [(1, json.loads(text))]
    except ValueError:  # ... or one per line (pages or records)
        documents = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                documents.append((line_no, json.loads(line)))
            except ValueError as exc:
                raise InputDataError(f"--feedback {path}: line {line_no} is not JSON ({exc}); give GET /feedback "
                                     "pages or one feedback record per line") from None
    out: list[dict[str, Any]] = []
    for _, data in documents:
        items = data.get("items") if isinstance(data, dict) and "items" in data else data
        items = items if isinstance(items, list) else [items]
        out.extend(items)
    return out


def load_feedback(path: Path) -> TrainingFeedback:
    """Read a feedback export; InputDataError names the record and field that is wrong."""
    verdicts: dict[tuple[str, str], set[str]] = {}
    for k, record in enumerate(_records(path), start=1):
        if not isinstance(record, dict):
            raise InputDataError(f"--feedback {path}: record {k} is not an object")
        for name in ("incident", "suggested", "verdict"):
            if not isinstance(record.get(name), str) or not record[name].strip():
                raise InputDataError(f"--feedback {path}: record {k} has no '{name}' (a non-empty string)")
        if record["verdict"] not in VERDICTS:
            raise InputDataError(f"--feedback {path}: record {k}: verdict {record['verdict']!r} is not one of "
                                 f"{', '.join(VERDICTS)}")
        if record["incident"] == record["suggested"]:
            continue
        verdicts.setdefault((record["incident"], record["suggested"]), set()).add(record["verdict"])
    duplicates: list[tuple[str, str]] = []
    negatives: dict[str, set[str]] = {}
    conflicting = related = 0
    for (incident, suggested), said in sorted(verdicts.items()):
        if {"duplicate", "not_similar"} <= said:
            conflicting += 1
        elif "duplicate" in said:
            duplicates.append((incident, suggested))
        elif "not_similar" in said:
            negatives.setdefault(incident, set()).add(suggested)
            negatives.setdefault(suggested, set()).add(incident)
        else:
            related += 1
    stats = {"pairs": len(verdicts), "duplicate": len(duplicates),
             "not_similar": sum(len(v) for v in negatives.values()) // 2, "related": related,
             "conflicting": conflicting}
    logger.info("feedback %s: %d confirmed duplicates, %d not-similar verdicts, %d related, %d conflicting pairs "
                "dropped", path, stats["duplicate"], stats["not_similar"], related, conflicting)
    return TrainingFeedback(tuple(duplicates), {k: frozenset(v) for k, v in negatives.items()}, stats)
