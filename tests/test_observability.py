"""deploy/observability against the running service: every metric the alert rules and the Grafana
dashboard use is exported, promtool accepts the files, and a real Prometheus server (Debian package
`prometheus`, installed by .ci/run) scrapes the service over loopback and answers the p99 query."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port, running

OBS = Path(__file__).resolve().parent.parent / "deploy" / "observability"
METRIC = re.compile(r"\bincident_sim_[a-z_]+\b")
P99_SIMILAR = ('histogram_quantile(0.99, sum by (le) '
               '(rate(incident_sim_request_duration_seconds_bucket{route="/similar"}[1m])))')


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install the Debian package 'prometheus' (.ci/run does)")
    return path


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((OBS / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((OBS / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def exported_names(exposition: str) -> set[str]:
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "info": ("_info",),
                "gauge": ("",)}
    for family in text_string_to_metric_families(exposition):
        names.update(s.name for s in family.samples)
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def test_every_metric_in_rules_and_dashboard_is_exported(live: httpx.Client) -> None:
    live.post("/similar", json={"text": "vpn certificate expired"})
    exported = exported_names(live.get("/metrics").text)
    exprs = rule_exprs() + dashboard_exprs()
    used = {name for e in exprs for name in METRIC.findall(e)}
    assert len(used) >= 10, used
    assert used <= exported, f"not exported by the service: {sorted(used - exported)}"
    # and the dashboard covers what ops asked for
    text = "\n".join(dashboard_exprs())
    for needle in ("histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99", "stage",
                   'outcome="shed"', 'outcome="server_error"', "incident_sim_model_info"):
        assert needle in text, needle


def test_a_renamed_metric_would_be_caught() -> None:
    exported = exported_names("# TYPE incident_sim_requests counter\nincident_sim_requests_total 1\n")
    used = set(METRIC.findall("rate(incident_sim_requests_totl[5m])"))
    assert not used <= exported


def test_promtool_accepts_config_and_rules(tmp_path: Path) -> None:
    promtool = binary("promtool")
    for f in ("prometheus.yml", "alerts.yml"):
        shutil.copy(OBS / f, tmp_path / f)
    r = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr and "8 rules found" in r.stdout + r.stderr


@pytest.fixture()
def prometheus(live: httpx.Client, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the live service every second, with our alert rules loaded."""
    exe = binary("prometheus")
    config = yaml.safe_load((OBS / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(OBS / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"{live.base_url.host}:{live.base_url.port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([exe, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], tmp_path / "prometheus.log",
                 f"{url}/-/ready", stop_timeout=20):
        yield url


def query(url: str, promql: str) -> dict:
    r = httpx.get(f"{url}/api/v1/query", params={"query": promql})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", body
    return body["data"]


def test_real_prometheus_scrapes_p99_of_similar(prometheus: str, live: httpx.Client) -> None:
    p99 = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for i in range(5):
            assert live.post("/similar", json={"text": f"vpn certificate expired on host {i}"}).status_code == 200
        result = query(prometheus, P99_SIMILAR)["result"]
        if result and result[0]["value"][1] not in ("NaN", "+Inf"):
            p99 = float(result[0]["value"][1])
            break
        time.sleep(1)
    assert p99 is not None, "Prometheus never returned a p99 for /similar"
    assert 0 < p99 < 5.0
    assert query(prometheus, 'up{job="incident-sim"}')["result"][0]["value"][1] == "1"
    assert query(prometheus, "incident_sim_ready")["result"][0]["value"][1] == "1"
    # the alert rules are loaded and evaluate without errors; every dashboard query runs
    rules = httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"][0]["rules"]
    assert {r["name"] for r in rules} >= {"IncidentSimSimilarLatencyHigh", "IncidentSimErrorRateHigh",
                                          "IncidentSimSheddingLoad", "IncidentSimNotReady", "IncidentSimDown"}
    assert all(r["health"] != "err" for r in rules), rules
    for expr in dashboard_exprs():
        query(prometheus, expr.replace("$__rate_interval", "1m"))
