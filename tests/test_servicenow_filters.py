"""Raw and display values, and domains, in both store adapters (Qdrant Edge and a Qdrant server through
qdrant-client): a keyword filter matches a field's raw value (a ServiceNow sys_id, a choice value) or its display
value (`<field>_display`), and a sys_domain filter never lets another domain's incident through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_store_contract import make_meta, make_points

from indexing.store.base import IncidentFilter, IncidentStore, IndexPoint
from indexing.store.edge import EdgeStore
from indexing.store.server import ServerStore

GROUP = "8a4dde73c6112278017a6a4baf547aa7"
FIELDS = {  # number -> (assignment_group, its display value or None, sys_domain, its name)
    "INC1": (GROUP, "Network Operations", "d1", "ACME"),
    "INC2": (GROUP, "Network Operations", "d2", "Globex"),
    "INC3": ("Network Operations", None, "d1", "ACME"),  # indexed from data that had the name only
    "INC4": ("b" * 32, "Service Desk", "d1", "ACME"),
    "INC5": (GROUP, "Network Operations", None, None),  # indexed before sys_domain was sent
}


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IncidentStore]:
    s: IncidentStore = EdgeStore(tmp_path / "idx") if request.param == "edge" else ServerStore(":memory:", "incidents")
    meta = make_meta()
    s.create_index(meta)
    points = []
    for p in make_points(meta):
        group, shown, domain, name = FIELDS[p.payload["number"]]
        extra = {"assignment_group": group, "assignment_group_display": shown, "sys_domain": domain,
                 "sys_domain_display": name}
        points.append(IndexPoint(p.point_id, p.dense, p.sparse,
                                 {**p.payload, **{k: v for k, v in extra.items() if v is not None}}))
    s.upsert(points)
    yield s
    s.close()


def found(store: IncidentStore, **fields: tuple[str, ...]) -> set[str]:
    meta_points = make_points(make_meta())
    number = {p.point_id: p.payload["number"] for p in meta_points}
    hits = store.search_dense(meta_points[0].dense, 10, where=IncidentFilter(fields=fields))
    return {number[h.point_id] for h in hits}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"assignment_group": ("Network Operations",)}, {"INC1", "INC2", "INC3", "INC5"}),  # display value (or a name)
    ({"assignment_group": (GROUP,)}, {"INC1", "INC2", "INC5"}),  # sys_id
    ({"assignment_group": ("Service Desk", GROUP)}, {"INC1", "INC2", "INC4", "INC5"}),  # either, mixed
    ({"sys_domain": ("d1",)}, {"INC1", "INC3", "INC4"}),  # never INC2 (d2), never INC5 (no domain)
    ({"sys_domain": ("Globex",)}, {"INC2"}),
    ({"sys_domain": ("d1",), "assignment_group": ("Network Operations",)}, {"INC1", "INC3"}),
    ({"sys_domain": ("d3",)}, set()),
])
def test_raw_or_display_value_and_domains(store: IncidentStore, fields: dict[str, tuple[str, ...]],
                                          expected: set[str]) -> None:
    assert found(store, **fields) == expected
