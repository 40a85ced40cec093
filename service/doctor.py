"""`incident-sim doctor`: check the environment and the data directory, and say what to fix in plain words.

Each check gives ok, warn (works, but worth knowing) or fail (something a user must fix before the service can
answer correctly); `incident-sim doctor` exits non-zero when any check fails. No HTTP, no engine: the checks read
the installed packages, the bundle registry and the index directly (the index is opened read-only when no service
holds it)."""

from __future__ import annotations

import importlib.util
import logging
import platform
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from indexing.cpu import FLAGS, cpu_facts
from indexing.errors import IncidentSimError, PointerLostError
from indexing.store.edge_catalog import RECOVER_COMMAND
from service.settings import Settings

logger = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "fail"
DISK_FAIL_BYTES = 500 * 1024**2
DISK_WARN_BYTES = 5 * 1024**3
PACKAGE = "incident-sim"


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


@dataclass
class Context:
    """What later checks need from earlier ones."""

    settings: Settings
    bundle: Any = None  # indexing.bundle.Bundle once loaded


def run_checks(settings: Settings) -> list[Finding]:
    context = Context(settings)
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(context))
        except Exception as exc:  # a check that breaks is itself a finding, never a traceback
            logger.debug("check %s raised", check.__name__, exc_info=True)
            findings.append(Finding(check.__name__.removeprefix("check_"), FAIL, f"the check itself failed: {exc}"))
    return findings


def check_python(context: Context) -> Iterator[Finding]:
    version = platform.python_version()
    if sys.version_info[:2] == (3, 11):
        yield Finding("python", OK, f"Python {version} ({sys.prefix})")
    else:
        yield Finding("python", FAIL, f"Python {version}; this project is tested on 3.11 only",
                      "create the environment with Python 3.11: bash deploy/install.sh")


def _requirements() -> dict[str | None, list[Any]]:
    from packaging.requirements import Requirement

    by_extra: dict[str | None, list[Any]] = {}
    for line in metadata.requires(PACKAGE) or []:
        requirement = Requirement(line)
        extra = None
        if requirement.marker is not None:
            for candidate in ("train", "dev", "gpu"):
                if requirement.marker.evaluate({"extra": candidate}):
                    extra = candidate
                    break
        by_extra.setdefault(extra, []).append(requirement)
    return by_extra


def check_packages(context: Context) -> Iterator[Finding]:
    try:
        by_extra = _requirements()
    except metadata.PackageNotFoundError:
        yield Finding("packages", FAIL, f"{PACKAGE} is not installed in this environment",
                      "run: bash deploy/install.sh (or pip install -e '.[train]')")
        return
    for extra in (None, "train", "dev"):
        wrong = []
        for requirement in by_extra.get(extra, []):
            try:
                installed = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                wrong.append(f"{requirement.name} missing")
                continue
            if not requirement.specifier.contains(installed, prereleases=True):
                wrong.append(f"{requirement.name} {installed} (pinned {requirement.specifier})")
        name = "serving install" if extra is None else f"extra [{extra}]"
        count = len(by_extra.get(extra, []))
        if not wrong:
            yield Finding(f"packages: {name}", OK, f"{count} pinned packages installed")
        elif extra is None:
            yield Finding(f"packages: {name}", FAIL, "; ".join(wrong[:6]),
                          "reinstall the pinned versions: bash deploy/install.sh")
        else:
            what = {"train": "building bundles, calibrate and train", "dev": "running the tests"}[extra]
            yield Finding(f"packages: {name}", WARN, f"needed only for {what}: " + "; ".join(wrong[:4]),
                          f"bash deploy/install.sh {extra}")


def check_model_packages(context: Context) -> Iterator[Finding]:
    from training.baseline import INSTALL_HINT, PART_PACKAGES

    missing = [p for p in PART_PACKAGES if importlib.util.find_spec(p) is None]
    if not missing:
        yield Finding("model packages", OK, "all-mpnet-base-v2 registry packages installed (5 parts)")
    else:
        yield Finding("model packages", WARN, f"{len(missing)} of 5 all-mpnet-base-v2 parts not installed; needed "
                      "only to build the baseline bundle", INSTALL_HINT)


def check_bundle(context: Context) -> Iterator[Finding]:
    from indexing.bundle import load_bundle
    from indexing.registry import BundleRegistry
    from service.wiring import resolve_bundle_path

    settings = context.settings
    if settings.bundle_path is None:
        registry = BundleRegistry(settings.bundles_dir)
        pointer = registry.active_version()
        if pointer is None:
            yield Finding("bundle", FAIL, f"no model bundle under {settings.bundles_dir}",
                          "build one: incident-sim bundle baseline (or run deploy/quickstart.sh)")
            return
        yield Finding("registry pointer", OK, f"active bundle {pointer}")
    try:
        path = resolve_bundle_path(settings, pointer_model=_pointer_model(settings))
        bundle = load_bundle(path)  # every file's checksum, the manifest, the parity record
    except IncidentSimError as exc:
        yield Finding("bundle", FAIL, str(exc), "rebuild it (incident-sim bundle baseline) or activate another "
                      "(incident-sim models list / models activate VERSION)")
        return
    context.bundle = bundle
    files = len(bundle.manifest.get("files", {}))
    yield Finding("bundle", OK, f"{bundle.model_version}: {files} files, checksums verified, encoder "
                  f"{bundle.manifest['encoder'].get('precision')}")
    if bundle.threshold_source != "calibrated":
        yield Finding("threshold", WARN, f"the threshold {bundle.threshold} is the uncalibrated default: many "
                      "'similar' flags will be false alarms", "calibrate it: incident-sim calibrate --data sample "
                      "(or your labelled export), then publish and activate the new bundle")
    else:
        yield Finding("threshold", OK, f"calibrated ({bundle.threshold:.3f})")


def _pointer_model(settings: Settings) -> str | None:
    """The bundle the index pointer names (what serves), read-only; None when there is none to read."""
    from service.wiring import open_catalog

    try:
        catalog = open_catalog(settings, read_only=True)
        try:
            return catalog.active_model() if catalog.active() else None
        finally:
            catalog.close()
    except IncidentSimError:
        return None


def check_index(context: Context) -> Iterator[Finding]:
    """Read-only, always: the catalog is opened without its lock and no shard is ever loaded (Qdrant Edge's load
    writes to the shard), so doctor is safe beside a running service."""
    settings = context.settings
    where = settings.qdrant_url or str(settings.edge_index_dir)
    try:
        yield from _index_findings(context, where)
    except PointerLostError as exc:
        yield Finding("index pointer", FAIL, str(exc), f"name the version that served last: {RECOVER_COMMAND}")
    except IncidentSimError as exc:
        yield Finding("index", FAIL, f"the index at {where} cannot be read: {exc}",
                      "start Qdrant / fix INCIDENT_SIM_QDRANT_URL, or index incidents into a fresh data directory")


def _index_findings(context: Context, where: str) -> Iterator[Finding]:
    from indexing.indexer import check_index_matches
    from service.wiring import open_catalog

    catalog = open_catalog(context.settings, read_only=True)
    try:
        active = catalog.active()
        if active is None:
            yield Finding("index", FAIL, f"no index under {where}: nothing is indexed yet",
                          "index incidents: incident-sim index --input FILE (or run deploy/quickstart.sh)")
            return
        meta = catalog.meta_of_version(active)
        if meta is None:
            yield Finding("index", FAIL, f"index version {active} has no metadata (an interrupted build?)",
                          "index incidents into a fresh data directory: incident-sim index --input FILE")
            return
        if context.bundle is not None:
            try:
                check_index_matches(meta, context.bundle)
            except IncidentSimError as exc:
                yield Finding("index", FAIL, str(exc), "activate the bundle that built it, or re-embed with "
                              f"incident-sim models activate {context.bundle.model_version}")
                return
        count = catalog.count_of(active)
        holder = catalog.holder()
        held = f"; in use by {holder}" if holder else ""
        if count is None:
            yield Finding("index", OK, f"{active} (built by {meta.model_version}, created {meta.created_at}){held}")
        else:
            yield Finding("index", OK if count else WARN, f"{active}: {count} incidents{held}",
                          "" if count else "index incidents: incident-sim index --input FILE")
    finally:
        catalog.close()


def check_cpu(context: Context) -> Iterator[Finding]:
    facts = cpu_facts()
    flags = [f for f in FLAGS if facts[f]]
    detail = f"{facts['cpu']}, {facts['cores']} cores, INT8-relevant: {', '.join(flags) or 'none'}"
    if not facts["avx2"]:
        yield Finding("cpu", WARN, detail + "; without AVX2 the INT8 encoder is slow",
                      "expect several times the measured encode latency")
        return
    yield Finding("cpu", OK, detail)
    bundle = context.bundle
    timed_on = (bundle.manifest["encoder"].get("quantization_search") or {}).get("timed_on") if bundle else None
    if timed_on:
        differ = [f for f in FLAGS if bool(timed_on.get(f)) != bool(facts[f])]
        if differ:
            yield Finding("cpu vs bundle", WARN, f"the bundle's INT8 recipe was chosen on a CPU that differs in "
                          f"{', '.join(differ)} ({timed_on.get('cpu')}): another recipe may be faster here",
                          "rebuild on this machine: incident-sim bundle baseline --search-int8")


def check_disk(context: Context) -> Iterator[Finding]:
    path = context.settings.data_dir
    probe = path if path.exists() else Path(path).resolve().parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    detail = f"{free / 1024**3:.1f} GiB free at {probe}"
    if free < DISK_FAIL_BYTES:
        yield Finding("disk", FAIL, detail, "free disk space: a bundle is ~0.5 GiB, an index of 100k incidents ~1 GiB")
    elif free < DISK_WARN_BYTES:
        yield Finding("disk", WARN, detail, "a rebuild or compaction needs room for a second copy of the index")
    else:
        yield Finding("disk", OK, detail)


CHECKS: list[Callable[[Context], Iterator[Finding]]] = [
    check_python, check_packages, check_model_packages, check_bundle, check_index, check_cpu, check_disk]
