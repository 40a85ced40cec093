"""Incident loaders (CSV, JSON, Table API) and the sample generator."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from indexing.errors import InputDataError
from indexing.incidents import Incident, incident_text, load_incidents, point_id_for
from training.data.sample import generate_incidents


def test_loads_table_api_json_csv_and_jsonl(tmp_path: Path) -> None:
    rows = generate_incidents(20, seed=1)
    (tmp_path / "a.json").write_text(json.dumps({"result": rows}))
    (tmp_path / "b.json").write_text(json.dumps(rows))
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with (tmp_path / "d.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    loaded = [load_incidents(tmp_path / n) for n in ("a.json", "b.json", "c.jsonl", "d.csv")]
    for incidents in loaded:
        assert [i.number for i in incidents] == [r["number"] for r in rows]
        assert [i.problem_id for i in incidents] == [r["problem_id"] for r in rows]
    assert loaded[3][0].opened_at == loaded[0][0].opened_at


def test_table_api_reference_fields_are_unwrapped(tmp_path: Path) -> None:
    row = {"number": "INC1", "short_description": "x y", "problem_id": {"value": "PRB1", "link": "https://..."}}
    (tmp_path / "a.json").write_text(json.dumps({"result": [row]}))
    assert load_incidents(tmp_path / "a.json")[0].problem_id == "PRB1"


@pytest.mark.parametrize(("content", "suffix", "message"), [
    ('{"result": [{"number": "INC1", "short_description": "ok"}, {"number": "INC2", "opened_at": "yesterday-ish",'
     ' "short_description": "x"}]}', ".json", r"record 2 \(number='INC2'\), field 'opened_at'"),
    ('{"result": [{"short_description": "no number"}]}', ".json", r"record 1 .*field 'number'"),
    ('{"result": [{"number": "INC9"}]}', ".json", "record 1 .*neither short_description nor description"),
    ('{"rows": []}', ".json", "'result' list"),
    ("[1, 2", ".json", "invalid JSON at line 1"),
    ("id,text\n1,x\n", ".csv", "'number' column"),
    ("number,short_description,opened_at\nINC1,x,2025-13-45\n", ".csv", r"record 1 .*'opened_at'"),
    ("x", ".xlsx", "unsupported file type"),
])
def test_malformed_input_names_record_and_field(tmp_path: Path, content: str, suffix: str, message: str) -> None:
    path = tmp_path / f"in{suffix}"
    path.write_text(content)
    with pytest.raises(InputDataError, match=message):
        load_incidents(path)


def test_point_ids_are_deterministic_per_number() -> None:
    assert point_id_for("INC0001") == point_id_for(" inc0001 ")
    assert point_id_for("INC0001") != point_id_for("INC0002")


def test_incident_text_joins_and_normalises() -> None:
    assert incident_text("  VPN   down ", "since\n\nmorning") == "VPN down\nsince morning"
    assert incident_text("VPN down", None) == "VPN down"
    assert incident_text("", "") == ""
    assert Incident(number="I", short_description="a", description="a b").text() == "a b"


def test_sample_generator_is_seeded_and_has_ground_truth() -> None:
    a = generate_incidents(800, seed=5)
    assert a == generate_incidents(800, seed=5)
    assert a != generate_incidents(800, seed=6)
    assert len(a) == 800 and len({r["number"] for r in a}) == 800
    fields = {"number", "sys_id", "short_description", "description", "category", "subcategory", "cmdb_ci",
              "assignment_group", "opened_at", "resolved_at", "close_notes", "problem_id", "duplicate_of", "state"}
    assert set(a[0]) == fields
    opened = {r["number"]: r["opened_at"] for r in a}
    by_problem: dict[str, list[dict]] = {}
    for r in a:
        if r["problem_id"]:
            by_problem.setdefault(r["problem_id"], []).append(r)
        if r["duplicate_of"]:
            # a duplicate points at an earlier incident of the same problem
            assert opened[r["duplicate_of"]] <= r["opened_at"]
            target = next(x for x in a if x["number"] == r["duplicate_of"])
            assert target["problem_id"] == r["problem_id"]
    clusters = [v for v in by_problem.values() if len(v) > 1]
    assert len(clusters) > 50
    # members of one problem are written differently (different reporters)
    assert sum(len({m["description"] for m in c}) > 1 for c in clusters) > 0.8 * len(clusters)
    # hard negatives: same category/subcategory shared by several different problems
    cats: dict[tuple[str, str], set[str]] = {}
    for r in a:
        if r["problem_id"]:
            cats.setdefault((r["category"], r["subcategory"]), set()).add(r["problem_id"])
    assert max(len(v) for v in cats.values()) > 10
    assert any(r["short_description"].startswith("[ALERT]") for r in a)
