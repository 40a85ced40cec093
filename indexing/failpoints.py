"""Named pauses for fault-injection tests: `INCIDENT_SIM_FAILPOINTS="switch.between_pointers=0.5,..."` makes
`pause("switch.between_pointers")` sleep 0.5 s there, so a test can SIGKILL a real process inside a
critical section that otherwise lasts microseconds. Unset (always, in production) it does nothing."""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache

logger = logging.getLogger(__name__)
ENV = "INCIDENT_SIM_FAILPOINTS"


@lru_cache(maxsize=1)
def _points(spec: str) -> dict[str, float]:
    out = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, seconds = item.partition("=")
        out[name.strip()] = float(seconds or 0)
    if out:
        logger.warning("failpoints active (tests only): %s", out)
    return out


def pause(name: str) -> None:
    seconds = _points(os.environ.get(ENV, "")).get(name)
    if seconds:
        time.sleep(seconds)
