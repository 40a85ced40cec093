"""Labelled incidents: which earlier incidents are "the same problem" as a given one.

Sources, strongest first:
* explicit links in a ServiceNow export: `duplicate_of`, `problem_id` (same problem record),
  `parent_incident`;
* the SeaMonkey duplicate reports in ../shared/data/seamonkey (Bugzilla triagers' duplicate links;
  GitBugs collection, Avinash Patil, arXiv:2504.09651, 2025, CC BY 4.0);
* the sample generator's ground truth (its `problem_id`/`duplicate_of`).
Category/subcategory equality is only available as an explicit weak-label mode, with a warning."""

from __future__ import annotations

import csv
import itertools
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from indexing.errors import InputDataError
from indexing.incidents import Incident

logger = logging.getLogger(__name__)

WEAK_LABEL_WARNING = (
    "weak labels: two incidents in the same category/subcategory are treated as similar. They are not the "
    "same problem (two 'Network / VPN' incidents can have unrelated causes), so these labels reward the "
    "wrong thing and overstate recall; use explicit links (duplicate_of, problem_id, parent_incident)."
)
SEAMONKEY_ATTRIBUTION = ("SeaMonkey bug reports with duplicate links, from the GitBugs collection "
                         "(Avinash Patil, arXiv:2504.09651, 2025), CC BY 4.0")


@dataclass(frozen=True)
class LabelledCorpus:
    name: str
    incidents: list[Incident]  # sorted by opened_at, then number
    links: frozenset[tuple[str, str]]  # undirected, (a, b) with a < b
    label_kind: str  # "explicit" or "weak-category"
    notes: list[str] = field(default_factory=list)

    def linked(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for a, b in self.links:
            out[a].add(b)
            out[b].add(a)
        return out


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _sorted(incidents: Iterable[Incident]) -> list[Incident]:
    missing = [i.number for i in incidents if i.opened_at is None]
    if missing:
        raise InputDataError(f"incidents without opened_at cannot be ordered in time: {missing[:5]}")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return sorted(incidents, key=lambda i: (_aware(i.opened_at or epoch), i.number))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_corpus(corpus: LabelledCorpus) -> LabelledCorpus:
    if not corpus.incidents:
        raise InputDataError(f"{corpus.name}: the corpus is empty")
    if not corpus.links:
        raise InputDataError(f"{corpus.name}: no links between incidents, so nothing to evaluate against")
    known = {i.number for i in corpus.incidents}
    unknown = sorted({n for pair in corpus.links for n in pair} - known)
    if unknown:
        raise InputDataError(f"{corpus.name}: links refer to unknown incidents {unknown[:10]}")
    return corpus


def from_incidents(incidents: Sequence[Incident], name: str, weak_category: bool = False,
                   on_unknown: str = "error") -> LabelledCorpus:
    """Links from a ServiceNow export's own fields. `on_unknown`: "error" or "drop" links whose other
    end is not in the export."""
    ordered = _sorted(incidents)
    known = {i.number for i in ordered}
    links: set[tuple[str, str]] = set()
    unknown: list[str] = []
    groups: dict[str, list[str]] = defaultdict(list)
    for inc in ordered:
        for target in (inc.duplicate_of, inc.parent_incident):
            if target:
                if target in known:
                    links.add(_pair(inc.number, target))
                else:
                    unknown.append(f"{inc.number}->{target}")
        if inc.problem_id:
            groups[f"problem:{inc.problem_id}"].append(inc.number)
        if weak_category and inc.category:
            groups[f"cat:{inc.category}/{inc.subcategory}"].append(inc.number)
    for members in groups.values():
        links.update(_pair(a, b) for a, b in itertools.combinations(members, 2))
    notes = []
    if unknown:
        if on_unknown == "error":
            raise InputDataError(f"{name}: links refer to incidents not in the corpus: {unknown[:10]}")
        notes.append(f"dropped {len(unknown)} links to incidents outside the corpus")
    if weak_category:
        logger.warning(WEAK_LABEL_WARNING)
        notes.append(WEAK_LABEL_WARNING)
    return check_corpus(LabelledCorpus(name, ordered, frozenset(links),
                                       "weak-category" if weak_category else "explicit", notes))


def load_seamonkey(folder: Path) -> LabelledCorpus:
    bugs_path, dups_path = folder / "bugs.csv", folder / "duplicates.csv"
    for p in (bugs_path, dups_path):
        if not p.is_file():
            raise InputDataError(f"SeaMonkey data not found: {p}")
    incidents = []
    with bugs_path.open(newline="", encoding="utf-8") as fh:
        for row_no, row in enumerate(csv.DictReader(fh), start=2):
            try:
                incidents.append(Incident(number=row["Issue id"], short_description=row["Summary"] or "",
                                          description=row["Description"] or "", opened_at=row["Created"],
                                          resolved_at=row["Resolved"] or None))
            except (KeyError, ValueError) as exc:
                raise InputDataError(f"{bugs_path}: line {row_no}: {exc}") from None
    known = {i.number for i in incidents}
    links: set[tuple[str, str]] = set()
    outside = 0
    with dups_path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for target in (t.strip() for t in row["Duplicate id"].split(",")):
                if not target:
                    continue
                if row["Issue id"] in known and target in known:
                    links.add(_pair(row["Issue id"], target))
                else:
                    outside += 1
    notes = [SEAMONKEY_ATTRIBUTION,
             f"{outside} duplicate links point outside the 1,076 exported reports and are dropped"]
    return check_corpus(LabelledCorpus("seamonkey", _sorted(incidents), frozenset(links), "explicit", notes))
