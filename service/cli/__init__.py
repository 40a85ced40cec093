"""`incident-sim`: one command line for building bundles, indexing incidents and serving /similar.

One module per command group: bundles (bundle/model), data (sample, index), quality (evaluate, calibrate,
train), live (recalibrate: `calibrate --live`), operations (serve, quickstart, doctor); common holds the Typer
apps, logging set-up and settings."""

from service.cli import bundles, data, live, operations, quality  # noqa: F401  (each module registers its commands)
from service.cli.common import app

__all__ = ["app"]
