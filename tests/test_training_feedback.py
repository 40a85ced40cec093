"""Agents' feedback into training (`incident-sim train --feedback`): the export is read in each form GET /feedback
gives, confirmed duplicates become positives and `not_similar` verdicts hard negatives, train split only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.calibrate import WordHashEncoder
from indexing.errors import InputDataError
from training.data.feedback import load_feedback
from training.pairs import mine_pairs
from training.protocol import time_boundaries
from training.quality import load_labelled

ANALYZER = "incident-v1"


def record(incident: str, suggested: str, verdict: str, source: str = "agent") -> dict[str, object]:
    return {"incident": incident, "suggested": suggested, "verdict": verdict, "source": source,
            "at": "2026-11-30T10:00:00Z", "received_at": "2026-11-30T10:00:01Z", "flagged": True, "score": 0.8}


def test_the_export_is_read_as_a_page_as_pages_per_line_and_as_records_per_line(tmp_path: Path) -> None:
    records = [record("A", "B", "duplicate"), record("C", "D", "not_similar"), record("E", "F", "related"),
               record("G", "H", "duplicate"), record("G", "H", "not_similar", source="servicenow-link")]
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"items": records, "next_cursor": None, "total": 5}, indent=2))
    pages = tmp_path / "pages.jsonl"
    pages.write_text("\n".join(json.dumps({"items": records[i:i + 2], "next_cursor": None}) for i in (0, 2, 4)))
    lines = tmp_path / "records.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    for path in (page, pages, lines):
        feedback = load_feedback(path)
        assert feedback.duplicates == (("A", "B"),)
        assert feedback.negatives_of("C") == {"D"} and feedback.negatives_of("D") == {"C"}
        assert feedback.stats == {"pairs": 4, "duplicate": 1, "not_similar": 1, "related": 1, "conflicting": 1}


@pytest.mark.parametrize(("content", "message"), [
    ("not json at all\n", "line 1 is not JSON"),
    (json.dumps(record("A", "B", "maybe")), "verdict 'maybe' is not one of"),
    (json.dumps({"incident": "A", "verdict": "duplicate"}), "record 1 has no 'suggested'"),
    (json.dumps({"items": [record("A", "B", "duplicate"), 7]}), "record 2 is not an object"),
])
def test_a_broken_export_is_refused_naming_what_to_fix(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "feedback.json"
    path.write_text(content)
    with pytest.raises(InputDataError, match=message):
        load_feedback(path)


def test_feedback_adds_positives_and_hard_negatives_inside_the_train_split_only(tmp_path: Path) -> None:
    corpus = load_labelled("sample", n=400)
    train_end, _ = time_boundaries(corpus)
    train = [i.number for i in corpus.incidents[:train_end]]
    later = corpus.incidents[train_end].number
    linked = corpus.linked()
    unlinked = [n for n in train if n not in linked]
    encoder = WordHashEncoder()
    before = mine_pairs(corpus, lambda texts: encoder.encode(texts).vectors, ANALYZER)
    anchor = before.pairs[0].anchor  # an anchor mined without feedback: give it an agent's negative
    new_positive = (unlinked[-1], unlinked[-2])
    said_not = next(n for n in reversed(train) if n not in linked and n not in before.pairs[0].negatives
                    and n != anchor and n not in new_positive)
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        record(*new_positive, "duplicate"),
        record(later, train[0], "duplicate"),  # its incident is in the validation split: not used
        record(anchor, said_not, "not_similar")]))
    feedback = load_feedback(path)
    after = mine_pairs(corpus, lambda texts: encoder.encode(texts).vectors, ANALYZER, feedback=feedback)
    pairs = {(p.anchor, p.positive) for p in after.pairs}
    assert (new_positive[0], new_positive[1]) in pairs or (new_positive[1], new_positive[0]) in pairs
    assert not any(later in (p.anchor, p.positive) for p in after.pairs)
    assert len(after.pairs) == len(before.pairs) + 1
    anchored = [p for p in after.pairs if p.anchor == anchor]
    assert anchored and all(p.negatives[0] == said_not for p in anchored)
    assert all(len(p.negatives) == len(before.pairs[0].negatives) for p in after.pairs)  # the width is kept
    assert after.stats["feedback"]["duplicates_used"] == 1
    assert after.stats["feedback"]["duplicates_outside_train_split"] == 1
    assert after.stats["feedback"]["not_similar_used"] == len(anchored)
    assert after.digest() != before.digest()
    assert before.stats["feedback"] is None


def test_train_refuses_a_broken_feedback_file_before_any_training(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    path = tmp_path / "feedback.jsonl"
    path.write_text(json.dumps(record("A", "B", "duplicate")) + "\n" + json.dumps(record("A", "C", "yes")) + "\n")
    result = CliRunner().invoke(app, ["train", "--data", "sample", "--n", "300", "--data-dir", str(tmp_path / "d"),
                                      "--feedback", str(path)])
    assert result.exit_code == 2, result.output
    assert "record 2: verdict 'yes' is not one of duplicate, related, not_similar" in result.output
    assert not (tmp_path / "d" / "training").exists()  # refused before a run directory was made
