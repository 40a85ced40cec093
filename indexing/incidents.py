"""The incident record, its text for the encoder, and loaders for real exports (CSV, JSON)."""

from __future__ import annotations

import csv
import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from indexing.errors import InputDataError, InvalidQueryError

logger = logging.getLogger(__name__)

# Fixed namespace so point ids are the same on every machine and every run.
_POINT_NAMESPACE = uuid.UUID("6f1c7c1e-6a57-4c55-9a52-3b8f2f0e9d11")
_WS = re.compile(r"\s+")

# The input boundary (README "Security"): what any text field may hold, how long fields may be, which moments exist.
TEXT_FIELDS = ("short_description", "description", "close_notes")  # limit: max_text_chars
KEYWORD_FIELDS = ("sys_id", "category", "subcategory", "cmdb_ci", "assignment_group", "state", "problem_id",
                  "duplicate_of", "parent_incident", "close_code", "sys_domain", "category_display",
                  "subcategory_display", "cmdb_ci_display", "assignment_group_display", "state_display",
                  "sys_domain_display")  # limit: max_field_chars
DEFAULT_MAX_TEXT_CHARS = 20_000
DEFAULT_MAX_FIELD_CHARS = 512
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# lone surrogates (no UTF-8 exists for them) and control characters other than whitespace (tab, newline, vertical
# tab, form feed, carriage return, NEL)
_BAD_CHAR = re.compile("[\ud800-\udfff\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")


def text_problem(value: str) -> str | None:
    """Why `value` is not acceptable text (a lone surrogate, a control character other than whitespace), or None.
    The message names the character by code point, never echoes it."""
    bad = _BAD_CHAR.search(value)
    if bad is None:
        return None
    code = ord(bad.group())
    what = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    return (f"contains {what} (U+{code:04X}) at position {bad.start()}; send valid Unicode text (no control "
            "characters other than whitespace such as tab and newline)")


def datetime_problem(value: datetime) -> str | None:
    """Why `value` is no acceptable moment (outside 1970-01-01 .. 2200-01-01 UTC; a time without zone is UTC), or
    None. Never raises OverflowError, whatever the offset."""
    message = (f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC; a time without zone is UTC), "
               f"not {value.isoformat()}")
    if not EARLIEST.year - 1 <= value.year <= LATEST.year:  # checked first: converting these could overflow
        return message
    moment = value if value.tzinfo is not None and value.utcoffset() is not None else value.replace(tzinfo=UTC)
    return None if EARLIEST <= moment.astimezone(UTC) < LATEST else message


def check_text_value(value: Any) -> Any:
    """A pydantic validator body: strings must be acceptable text (ValueError says why)."""
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        raise ValueError(problem)
    return value


def check_datetime_value(value: Any) -> Any:
    """A pydantic validator body: datetimes must lie in the accepted range (ValueError says why)."""
    if isinstance(value, datetime) and (problem := datetime_problem(value)) is not None:
        raise ValueError(problem)
    return value


def normalise_number(number: str) -> str:
    """The one form of an incident number (surrounding whitespace dropped, upper case): point ids, stored copies,
    de-duplication and lookups all use it, so `inc0001` and ` INC0001 ` are one incident."""
    return number.strip().upper()


class Incident(BaseModel):
    """A ServiceNow-shaped incident. Only `number` and some text are required."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    number: str = Field(min_length=1, max_length=64)
    sys_id: str | None = None
    short_description: str = ""
    description: str = ""
    category: str | None = None
    subcategory: str | None = None
    cmdb_ci: str | None = None
    assignment_group: str | None = None
    state: str | None = None
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    close_notes: str | None = None
    problem_id: str | None = None
    duplicate_of: str | None = None
    parent_incident: str | None = None
    close_code: str | None = None
    # the ServiceNow domain (sys_id) the incident belongs to: a sys_domain filter keeps suggestions inside it
    sys_domain: str | None = None
    # display values beside raw ones (a reference's sys_id, a choice's value): a filter matches either
    category_display: str | None = None
    subcategory_display: str | None = None
    cmdb_ci_display: str | None = None
    assignment_group_display: str | None = None
    state_display: str | None = None
    sys_domain_display: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _unwrap_reference(cls, value: Any) -> Any:
        # The Table API writes reference fields as {"value": ..., "link": ...}.
        if isinstance(value, dict) and "value" in value:  # Table API reference shape
            value = value["value"]
        return value

    @field_validator("opened_at", "resolved_at", "sys_id", "category", "subcategory", "cmdb_ci",
                     "assignment_group", "state", "close_notes", "problem_id", "duplicate_of", "parent_incident",
                     "close_code", "sys_domain", "category_display", "subcategory_display", "cmdb_ci_display",
                     "assignment_group_display", "state_display", "sys_domain_display", mode="before")
    @classmethod
    def _blank_to_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _acceptable(cls, value: Any) -> Any:
        return check_datetime_value(check_text_value(value))

    @field_validator("state", mode="before")
    @classmethod
    def _state_code(cls, value: Any) -> Any:
        # ServiceNow sends state as a code ("7") or display value ("Closed"); a bare integer is a code too
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def point_id(self) -> str:
        """Deterministic Qdrant point id: re-indexing the same incident overwrites it."""
        return point_id_for(self.number)

    def text(self) -> str:
        return incident_text(self.short_description, self.description)

    def payload(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if v is not None}


def check_incident(incident: Incident, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
                   max_field_chars: int = DEFAULT_MAX_FIELD_CHARS) -> None:
    """Whether an incident can be stored as given (InvalidQueryError says what to fix): every text field
    (short_description, description, close_notes) within `max_text_chars`, every keyword field within
    `max_field_chars`, and some text at all. (What a field may contain is checked when the Incident is built.)"""
    for names, limit in ((TEXT_FIELDS, max_text_chars), (KEYWORD_FIELDS, max_field_chars)):
        for name in names:
            value = getattr(incident, name)
            if value is not None and len(value) > limit:
                raise InvalidQueryError(f"{name} is {len(value)} characters; the limit is {limit}")
    if not incident.text():
        raise InvalidQueryError(f"incident {incident.number} has neither short_description nor description")


def point_id_for(number: str) -> str:
    if (problem := text_problem(number)) is not None:
        raise InvalidQueryError(f"number: {problem}")
    return str(uuid.uuid5(_POINT_NAMESPACE, normalise_number(number)))


def normalise_whitespace(text: str) -> str:
    return _WS.sub(" ", text).strip()


def incident_text(short_description: str | None, description: str | None) -> str:
    """The text the encoder sees: short description first, then the description."""
    parts = [normalise_whitespace(p) for p in (short_description or "", description or "") if p]
    parts = [p for p in parts if p]
    if len(parts) == 2 and parts[1].startswith(parts[0]):
        return parts[1]
    return "\n".join(parts)


def _validate_rows(rows: Iterable[dict[str, Any]], source: str) -> Iterator[Incident]:
    seen: set[str] = set()
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise InputDataError(f"{source}: record {index} is a {type(row).__name__}, expected an object")
        try:
            incident = Incident.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "?"
            raise InputDataError(
                f"{source}: record {index} (number={row.get('number')!r}), field '{field}': {first['msg']}"
            ) from None
        if not incident.text():
            raise InputDataError(
                f"{source}: record {index} (number={incident.number!r}) has neither "
                "short_description nor description"
            )
        if incident.number in seen:
            logger.warning("%s: record %d repeats incident %s; the last one wins", source, index, incident.number)
        seen.add(incident.number)
        yield incident


def load_incidents(path: str | Path) -> list[Incident]:
    """Load incidents from a CSV file, a JSON list, a ServiceNow Table API body
    (`{"result": [...]}`) or JSON lines. Errors name the record and the field."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"incident file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "number" not in reader.fieldnames:
                raise InputDataError(f"{path}: CSV header must contain a 'number' column, got {reader.fieldnames}")
            return list(_validate_rows(reader, str(path)))
    if suffix in (".json", ".jsonl", ".ndjson"):
        text = path.read_text(encoding="utf-8")
        try:
            if suffix == ".json":
                data = json.loads(text)
            else:
                data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InputDataError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        if isinstance(data, dict):
            if "result" not in data or not isinstance(data["result"], list):
                raise InputDataError(f"{path}: a JSON object must be a Table API body with a 'result' list")
            data = data["result"]
        if not isinstance(data, list):
            raise InputDataError(f"{path}: expected a list of incidents")
        return list(_validate_rows(data, str(path)))
    raise InputDataError(f"{path}: unsupported file type '{suffix}' (use .csv, .json or .jsonl)")
