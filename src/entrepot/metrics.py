"""Prometheus metrics, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_LATENCY = Histogram(
    "entrepot_http_request_duration_seconds",
    "HTTP request latency by route template, method and status class.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "entrepot_job_duration_seconds",
    "Time a worker spent running a job, by kind and outcome.",
    ["kind", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "entrepot_jobs_finished_total",
    "Jobs finished by this process, by kind and outcome.",
    ["kind", "status"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "entrepot_jobs",
    "Jobs in the catalog by status (read when /metrics is scraped).",
    ["status"],
    registry=REGISTRY,
)
