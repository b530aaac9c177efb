"""The inference server's Prometheus metrics (``GET /metrics``), one registry per server.

Requests are counted by model, version, variant, protocol and status code; latency and batch size
are histograms; in-flight requests, queue depth and model load seconds are gauges.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics"]

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    """The metrics of one inference server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        model = ["model", "version", "variant"]
        self.requests = Counter(
            "loopml_requests",
            "Prediction requests answered, by model, version, variant, protocol and status code.",
            [*model, "protocol", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loopml_request_latency_seconds",
            "Time from a prediction request's arrival to its answer.",
            [*model, "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "loopml_batch_size",
            "Rows per model call after micro-batching.",
            model,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "loopml_in_flight_requests",
            "Prediction requests being answered now.",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "loopml_queue_depth",
            "Requests waiting for a batch.",
            model,
            registry=self.registry,
        )
        self.load_seconds = Gauge(
            "loopml_model_load_seconds",
            "Seconds the model took to load and warm up.",
            model,
            registry=self.registry,
        )
        self.shadow_errors = Counter(
            "loopml_shadow_errors",
            "Shadow predictions that failed or were dropped (never seen by clients).",
            model,
            registry=self.registry,
        )
        self.swaps = Counter(
            "loopml_model_swaps",
            "Hot swaps of the served models.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
