"""Prometheus metrics (explicit buckets), one registry per app so tests can run several apps."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.request_latency = Histogram(
            "incident_sim_request_duration_seconds", "HTTP request latency by route and status.",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.stage_latency = Histogram(
            "incident_sim_stage_duration_seconds", "Latency of each /similar stage.", ["stage"],
            buckets=STAGE_BUCKETS, registry=r)
        self.errors = Counter("incident_sim_errors_total", "Failed requests by error code.", ["route", "code"],
                              registry=r)
        self.truncated_inputs = Counter("incident_sim_truncated_inputs_total",
                                        "Query texts cut at the model's max sequence length.", registry=r)
        self.index_size = Gauge("incident_sim_index_incidents", "Incidents in the active index.", registry=r)
        self.versions = Info("incident_sim_model", "Active model and index versions.", registry=r)
