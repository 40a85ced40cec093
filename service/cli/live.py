"""`incident-sim calibrate --live`: recalibrate the running service's threshold from its recent answers
(POST /admin/threshold/recalibrate), a dry run unless --apply. The service holds the answer log and the index lock,
so the CLI asks it rather than opening the data directory."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import httpx
import typer

from service.cli.common import app

logger = logging.getLogger(__name__)


def recalibrate_live(service: str, api_key: str | None, apply: bool, method: str, timeout_s: float = 120.0) -> int:
    """Print the proposal (and the switch when applied); returns the process exit code."""
    if not api_key:
        typer.secho("calibrate --live needs an admin key: --api-key or INCIDENT_SIM_ADMIN_KEY", fg=typer.colors.RED,
                    err=True)
        return 2
    try:
        r = httpx.post(f"{service.rstrip('/')}/admin/threshold/recalibrate", json={"apply": apply, "method": method},
                       headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        typer.secho(f"cannot reach the service at {service}: {exc}", fg=typer.colors.RED, err=True)
        return 1
    if r.status_code != 200:
        typer.secho(f"{r.status_code}: {r.text[:500]}", fg=typer.colors.RED, err=True)
        return 1
    body: dict[str, Any] = r.json()
    p = body["proposal"]
    hit = "n/a" if p.get("hit_rate") is None else f"{p['hit_rate']:.1%}"
    typer.echo(f"live answers: {p['answers']} incidents ({p['negatives']} negatives, {p['hits']} confirmed "
               f"duplicates) of {', '.join(p['models'])}")
    typer.echo(f"threshold {p['current']:.4f} -> {p['threshold']:.4f} ({body['method']}; point-estimate rule "
               f"{p['point_estimate']:.4f}); false alarms {p['false_alarms']}/{p['negatives']} = {p['rate']:.2%}, "
               f"upper bound {p['upper_bound']:.2%} (target {p['target']:.0%} at {p['confidence']:.0%})")
    typer.echo(f"flagged share {p['flagged_share_now']:.1%} -> {p['flagged_share_new']:.1%}; confirmed duplicates "
               f"caught {p['hits_caught']}/{p['hits']} ({hit})")
    typer.echo(body["reason"])
    if body.get("applied"):
        switch = body.get("switch") or {}
        typer.echo(f"serving {body['model_version']} on index {switch.get('index_version')} "
                   f"(switch {float(switch.get('swap_seconds') or 0) * 1000:.1f} ms, nothing re-embedded)")
    logger.debug("recalibration: %s", json.dumps(body))
    return 0


@app.command("recalibrate")
def recalibrate(
    apply: Annotated[bool, typer.Option("--apply", help="Switch to the new threshold (default: a dry run).")] = False,
    method: Annotated[str, typer.Option(help="clopper_pearson (the offline rule on the recent answers) or aci (the "
                                        "online rule's threshold).")] = "clopper_pearson",
    service: Annotated[str, typer.Option(help="The running service.")] = "http://127.0.0.1:8000",
    api_key: Annotated[str | None, typer.Option(envvar="INCIDENT_SIM_ADMIN_KEY",
                                                help="A key with the admin scope.")] = None,
) -> None:
    """`calibrate --live`: recalibrate the running service's threshold from its recent answers (each without a
    confirmed duplicate a negative; the offline Clopper-Pearson rule and target) and, with --apply, switch to it
    on the serving index (a threshold-only bundle: nothing re-embedded; `models rollback` undoes it)."""
    raise typer.Exit(recalibrate_live(service, api_key, apply, method))
