"""Prometheus metrics: reconciles, their duration, AWS calls, DjlEndpoints by phase.

AWS calls are counted from botocore's own event hooks on the shared clients, so
every call is seen, retries included, without wrapping any code path.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

RECONCILES = Counter(
    "djl_operator_reconciles_total", "Reconciles of DjlEndpoints, by result.", ["result"], registry=REGISTRY
)
RECONCILE_SECONDS = Histogram(
    "djl_operator_reconcile_duration_seconds",
    "Time spent in one reconcile (AWS calls included).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
AWS_CALLS = Counter(
    "djl_operator_aws_calls_total",
    "AWS API calls made by the operator, by service, operation and error code (OK for success).",
    ["service", "operation", "code"],
    registry=REGISTRY,
)


class PhaseTracker(Collector):
    """The phase of every DjlEndpoint this process reconciles, exported as a gauge per phase."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phases: dict[str, str] = {}

    def set(self, uid: str, phase: str | None) -> None:
        with self._lock:
            if phase is None:
                self._phases.pop(uid, None)
            else:
                self._phases[uid] = phase

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            counts = Tally(self._phases.values())
        family = GaugeMetricFamily("djl_operator_djlendpoints", "DjlEndpoints by phase.", labels=["phase"])
        for phase, count in sorted(counts.items()):
            family.add_metric([phase], count)
        yield family


PHASES = PhaseTracker()
REGISTRY.register(PHASES)


def _count_call(http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
    if model is None:
        return
    error = (parsed or {}).get("Error") or {}
    code = str(error.get("Code") or "OK")
    AWS_CALLS.labels(model.service_model.service_name, model.name, code).inc()


def _count_failed_call(model: Any = None, exception: Any = None, **_: Any) -> None:
    if model is not None and exception is not None:
        AWS_CALLS.labels(model.service_model.service_name, model.name, type(exception).__name__).inc()


def instrument(client: Any) -> Any:
    """Count every call ``client`` makes."""
    client.meta.events.register("after-call.*.*", _count_call)
    client.meta.events.register("after-call-error.*.*", _count_failed_call)
    return client


def serve(port: int, address: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY) -> None:
    start_http_server(port, addr=address, registry=registry)
