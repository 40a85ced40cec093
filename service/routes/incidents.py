"""Incident pushes from ServiceNow: create/replace, delete, bulk. Validation here, work in the engine."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import ValidationError

from indexing.errors import InvalidQueryError
from indexing.incidents import Incident, check_incident, normalise_number, text_problem
from service.auth import require
from service.engine import Engine
from service.errors import validation_message
from service.schemas import (
    NUMBER_PATTERN,
    BulkItemResult,
    BulkRequest,
    BulkResponse,
    IncidentIn,
    IncidentWritten,
    StoredIncidentOut,
    error_responses,
)
from service.settings import Scope

router = APIRouter(prefix="/incidents", tags=["incidents"])

Number = Annotated[str, Path(pattern=NUMBER_PATTERN, description="The incident number, e.g. INC0012345.")]


def to_incident(number: str, body: IncidentIn) -> Incident:
    """The incident to store, under the number's one normalised form (indexing.incidents.normalise_number)."""
    number = normalise_number(number)
    if body.number is not None and normalise_number(body.number) != number:
        raise InvalidQueryError(f"number: the body says {echo(body.number)!r} but the path says {number!r}")
    data = body.model_dump(exclude_none=True)
    data["number"] = number
    try:
        return Incident.model_validate(data)
    except ValidationError as exc:
        raise InvalidQueryError(validation_message(exc)[0]) from None


def check_limits(incident: Incident, request: Request) -> None:
    """Every text and keyword field within the service's limits (INCIDENT_SIM_MAX_TEXT_CHARS, _MAX_FIELD_CHARS)."""
    settings = request.app.state.settings
    check_incident(incident, settings.max_text_chars, settings.max_field_chars)


def echo(value: object) -> str | None:
    """A client's value as an answer may quote it: as given when it is plain text of a sane length, else escaped
    (a lone surrogate in an answer would fail its encoding, after the write)."""
    if not isinstance(value, str):
        return None
    if len(value) <= 64 and text_problem(value) is None:
        return value
    return ascii(value[:64])


@router.put("/{number}", response_model=IncidentWritten, name="put_incident", status_code=200,
            responses={201: {"model": IncidentWritten, "description": "Created."},
                       **error_responses(401, 403, 413, 415, 422, 429, 503)},
            dependencies=[Depends(require(Scope.write))],
            summary="Create or replace an incident (re-embedded; searchable when this returns)")
def put_incident(number: Number, body: IncidentIn, request: Request, response: Response) -> IncidentWritten:
    engine: Engine = request.app.state.engine
    incident = to_incident(number, body)
    check_limits(incident, request)
    outcome = engine.upsert_incidents([incident])[0]
    request.app.state.metrics.incident_writes.labels(operation="created" if outcome.created else "updated").inc()
    response.status_code = 201 if outcome.created else 200
    return IncidentWritten(number=outcome.number, status="created" if outcome.created else "updated",
                           truncated=outcome.truncated, model_version=outcome.model_version,
                           index_version=outcome.index_version)


@router.get("/{number}", response_model=StoredIncidentOut, name="get_incident",
            responses=error_responses(401, 403, 404, 422, 429, 503),
            dependencies=[Depends(require(Scope.query))], summary="The stored copy of an incident")
def get_incident(number: Number, request: Request) -> StoredIncidentOut:
    engine: Engine = request.app.state.engine
    stored = engine.get_incident(number)
    return StoredIncidentOut(number=str(stored.payload.get("number", number)), index_version=stored.index_version,
                             incident=stored.payload)


@router.delete("/{number}", status_code=204, name="delete_incident", response_class=Response,
               responses={204: {"description": "Deleted."}, **error_responses(401, 403, 404, 422, 429, 503)},
               dependencies=[Depends(require(Scope.write))], summary="Remove an incident from the index")
def delete_incident(number: Number, request: Request) -> Response:
    request.app.state.engine.delete_incident(number)
    request.app.state.metrics.incident_writes.labels(operation="deleted").inc()
    return Response(status_code=204)


@router.post("/bulk", response_model=BulkResponse, name="bulk_incidents",
             responses=error_responses(401, 403, 413, 415, 422, 429, 503),
             dependencies=[Depends(require(Scope.write))],
             summary="Create or replace many incidents; every item is checked before anything is written, "
                     "failures are reported per item",
             description="Every item is validated first (fields, lengths, text, dates, its number in normalised "
                         "form: trimmed, upper case); only then are the valid ones written, in one batch. Invalid "
                         "items are reported with the field at fault and change nothing; a number given twice "
                         "(in any case) keeps its last version. A 4xx answer means nothing was written.")
def bulk_incidents(body: BulkRequest, request: Request) -> BulkResponse:
    engine: Engine = request.app.state.engine
    limit = request.app.state.settings.max_bulk_incidents
    if len(body.incidents) > limit:
        raise InvalidQueryError(f"incidents: {len(body.incidents)} items; the limit is {limit} per request")
    results: list[BulkItemResult | None] = [None] * len(body.incidents)
    valid: dict[str, tuple[int, Incident]] = {}  # by number: a repeated number keeps its last version
    for i, item in enumerate(body.incidents):  # all checked before anything is written
        raw = item.get("number")
        number = normalise_number(raw) if isinstance(raw, str) else None
        try:
            if number is None or not re.fullmatch(NUMBER_PATTERN, number):
                raise InvalidQueryError("number: required, 1-64 letters, digits, '_', '.' or '-'")
            parsed = IncidentIn.model_validate(item)
            incident = to_incident(number, parsed)
            check_limits(incident, request)
        except ValidationError as exc:
            results[i] = BulkItemResult(index=i, number=echo(raw), status="invalid", error=validation_message(exc)[0])
            continue
        except InvalidQueryError as exc:
            results[i] = BulkItemResult(index=i, number=echo(raw), status="invalid", error=str(exc))
            continue
        if incident.number in valid:
            earlier = valid[incident.number][0]
            results[earlier] = BulkItemResult(index=earlier, number=incident.number, status="invalid",
                                              error=f"repeated later in the request (item {i}); that one is kept")
        valid[incident.number] = (i, incident)
    versions = (engine.current.bundle.model_version, str(engine.current.index_version))
    if valid:
        outcomes = engine.upsert_incidents([inc for _, inc in valid.values()])
        versions = (outcomes[0].model_version, outcomes[0].index_version)
        for (i, _), outcome in zip(valid.values(), outcomes, strict=True):
            status = "created" if outcome.created else "updated"
            results[i] = BulkItemResult(index=i, number=outcome.number, status=status, truncated=outcome.truncated)
            request.app.state.metrics.incident_writes.labels(operation=status).inc()
    final = [r for r in results if r is not None]
    count: dict[str, Any] = {s: sum(r.status == s for r in final) for s in ("created", "updated")}
    return BulkResponse(created=count["created"], updated=count["updated"],
                        failed=sum(r.status == "invalid" for r in final),
                        model_version=versions[0], index_version=versions[1], results=final)
