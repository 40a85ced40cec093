"""A labelled corpus on which the baseline encoder is known to be weak and fine-tuning can help.

Internal systems are reported under two names: their plain name ("payroll server") in the first report
and an internal codename ("vexor") in the later duplicate. The baseline cannot know that "vexor" is
the payroll server, BM25 cannot match them, and the symptom alone is shared by one cluster per
system. Each (system, symptom) cluster appears once, so the test split's clusters combine systems and
symptoms seen separately in training: a model that learned the codenames generalises to them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

SYSTEMS = [
    ("payroll server", "vexor"), ("vpn gateway", "quilmar"), ("mail relay", "trevane"),
    ("print spooler", "oskarin"), ("badge reader", "pellidor"), ("file share", "zumbrak"),
    ("ticket portal", "havrel"), ("backup appliance", "corvinth"), ("wifi controller", "dranesk"),
    ("crm database", "ulmatch"), ("build server", "feskarn"), ("phone system", "gorvial"),
    ("expense app", "lintrove"), ("hr portal", "mosquil"), ("storage array", "brevant"),
    ("web proxy", "yandrel"),
]
SYMPTOMS = [
    "times out after login", "crashes on start", "shows error 500", "is very slow this morning",
    "rejects valid passwords", "loses the connection every few minutes", "returns empty results",
    "fails the nightly job", "fills the disk", "sends duplicate messages",
]
OPENERS = ["urgent:", "please help,", "since today", "users report that", "again:", "fyi"]


def codename_corpus(seed: int = 0, shuffled_links: bool = False) -> list[dict[str, Any]]:
    """Incident rows (ServiceNow fields). `shuffled_links`: each duplicate points at a random earlier first
    report instead of its own (the labels of a model that must not be promoted)."""
    rng = random.Random(seed)
    clusters = [(s, y) for s in range(len(SYSTEMS)) for y in range(len(SYMPTOMS))]
    rng.shuffle(clusters)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    firsts: list[str] = []
    for c, (s, y) in enumerate(clusters):
        plain, code = SYSTEMS[s]
        first = f"INC{2 * c:07d}"
        opened = start + timedelta(hours=6 * c)
        rows.append({"number": first, "short_description": f"{rng.choice(OPENERS)} {plain} {SYMPTOMS[y]}",
                     "opened_at": opened.isoformat(), "category": "software"})
        target = rng.choice(firsts + [first]) if shuffled_links else first
        firsts.append(first)
        rows.append({"number": f"INC{2 * c + 1:07d}", "short_description": f"{rng.choice(OPENERS)} {code} "
                     f"{SYMPTOMS[y]}", "opened_at": (opened + timedelta(hours=3)).isoformat(),
                     "category": "software", "duplicate_of": target})
    return rows
