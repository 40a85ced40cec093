"""What every `incident-sim` command shares: the Typer apps, logging set-up (in this one place), settings and
the error exit."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from indexing import steps
from indexing.errors import IncidentSimError
from service.settings import Settings

HELP = """`incident-sim`: one command line for building bundles, indexing incidents and serving /similar.

Training-side commands import torch lazily, so the serving install works without it."""

app = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False)
bundle_app = typer.Typer(help="Build and inspect model bundles.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")
models_app = typer.Typer(help="The bundle registry: list, activate (re-index + switch), roll back.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")

logger = logging.getLogger("incident_sim")

def setup_logging(level: str, fmt: str = "text") -> None:
    """Text for the command-line tools; JSON lines (with request id, latency, outcome) for the service."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level",
                                                          "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(quiet_root_info)
    handler.addFilter(drop_color_message)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)


def quiet_root_info(record: logging.LogRecord) -> bool:
    """onnxruntime's quantiser logs one INFO line per tensor straight on the root logger."""
    return record.name != "root" or record.levelno >= logging.WARNING


def drop_color_message(record: logging.LogRecord) -> bool:
    """uvicorn attaches an ANSI-coloured copy of its message; JSON logs keep only the plain one."""
    record.__dict__.pop("color_message", None)
    return True


def fail(exc: Exception) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: $INCIDENT_SIM_DATA_DIR or ./var).")]


def load_settings(data_dir: Path | None, service: bool = False) -> Settings:
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as exc:
        setup_logging("INFO")
        # never echo the input: it may hold API keys
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False))
        fail(IncidentSimError(f"invalid settings (INCIDENT_SIM_* environment): {problems}"))
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    setup_logging(settings.log_level, settings.log_format if service else "text")
    return settings


Command = TypeVar("Command", bound=Callable[..., Any])


def timed(title: str) -> Callable[[Command], Command]:
    """Run the command as one step run: each step it takes logs its start and end, and one line per step with
    its duration is logged at the end (indexing/steps.py)."""

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with steps.run(title):
                return command(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
