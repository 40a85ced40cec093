"""A pointer file and its last good copy: the one way the index catalog and the bundle registry record what
serves (`ACTIVE.json` + `ACTIVE.json.bak`).

Rules (DESIGN.md, "Writes, versions and replicas"):
* The pointer is written first (atomically: indexing/atomic.py), its `.bak` copy after it, with the same
  content. So a `.bak` only ever holds a value the pointer held, never one that has not served; a crash
  between the two leaves a `.bak` one switch behind, which `heal` brings up to date at the next start.
* A missing or damaged pointer is recovered from its `.bak`. With both unusable the reader is told so
  (`PointerState.lost`); it never guesses ("the newest version") a value that may miss acknowledged writes.
* Reading changes nothing on disk; only `heal` and `write` do, and only a process holding the data
  directory's lock calls them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexing import failpoints
from indexing.atomic import atomic_write_json

logger = logging.getLogger(__name__)

Validator = Callable[[dict[str, Any]], None]  # raises ValueError when a pointer's content is unusable


@dataclass(frozen=True)
class PointerState:
    data: dict[str, Any] | None  # the usable content, from the pointer or its backup; None: none usable
    source: str  # pointer | backup | absent (neither file exists) | lost (files exist, none usable)
    problems: list[str] = field(default_factory=list)  # why each unusable file was refused

    @property
    def lost(self) -> bool:
        return self.source == "lost"


class PointerFile:
    def __init__(self, path: Path, validate: Validator, name: str) -> None:
        """`name` (index, registry) names the failpoint between the two writes: `<name>_pointer.before_backup`."""
        self.path = Path(path)
        self.name = name
        self.backup = self.path.with_name(self.path.name + ".bak")
        self.validate = validate

    def _load(self, path: Path) -> tuple[dict[str, Any] | None, str | None]:
        """(content, None) when usable, (None, problem) when damaged, (None, None) when the file is absent."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            self.validate(data)
        except FileNotFoundError:
            return None, None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, OSError) as exc:
            return None, f"{path.name}: {str(exc)[:200]}"
        return data, None

    def read(self) -> PointerState:
        data, problem = self._load(self.path)
        if data is not None:
            return PointerState(data, "pointer")
        backup, backup_problem = self._load(self.backup)
        problems = [p for p in (problem, backup_problem) if p]
        if problem is None and not self.path.exists():
            problems.insert(0, f"{self.path.name}: missing")
        if backup is not None:
            return PointerState(backup, "backup", problems)
        if not self.path.exists() and not self.backup.exists():
            return PointerState(None, "absent")
        if backup_problem is None:
            problems.append(f"{self.backup.name}: missing")
        return PointerState(None, "lost", problems)

    def write(self, data: dict[str, Any]) -> None:
        atomic_write_json(self.path, data)  # the commit point
        failpoints.pause(f"{self.name}_pointer.before_backup")
        atomic_write_json(self.backup, data)  # then its copy: the value now serves

    def heal(self) -> PointerState:
        """Bring the pair back in step (call only while holding the data directory's lock): a pointer recovered
        from its backup is written back; a backup behind a good pointer (a crash between the two writes) is
        updated. Returns what was read."""
        state = self.read()
        if state.source == "backup" and state.data is not None:
            logger.error("pointer %s is unusable (%s); restoring it from its last good copy %s",
                         self.path, "; ".join(state.problems), self.backup.name)
            atomic_write_json(self.path, state.data)
        elif state.source == "pointer" and state.data is not None:
            backup, _ = self._load(self.backup)
            if backup != state.data:
                atomic_write_json(self.backup, state.data)
        return state
