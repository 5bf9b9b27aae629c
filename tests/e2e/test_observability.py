"""Metrics and structured logs, scraped from a running operator during an e2e run."""

from __future__ import annotations

import json
import re
import urllib.request

from djl_operator_kit.controlplane import free_port
from tests.plugins.operator import Cluster, endpoint_manifest, wait_for


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) ([-+\d.eE]+|NaN|\+Inf)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def test_metrics_and_json_logs_during_a_create(cluster: Cluster) -> None:
    port = free_port()
    cluster.operator.stop()
    cluster.operator.extra_args = ["--metrics-port", str(port), "--log-format", "json"]
    cluster.operator.start()
    cluster.emulator.faults.set(create_delay=1.0)  # Creating for a while: the operator polls it
    cluster.apply(endpoint_manifest("observed"))
    cluster.wait_ready("observed")

    def scraped() -> dict[str, float] | None:
        samples = _scrape(port)
        return samples if samples.get('djl_operator_djlendpoints{phase="InService"}') == 1 else None

    samples = wait_for(scraped, timeout=20, what="the InService gauge")
    assert samples['djl_operator_reconciles_total{result="ready"}'] >= 1
    assert samples['djl_operator_reconciles_total{result="poll"}'] >= 1  # it polled while Creating
    assert samples["djl_operator_reconcile_duration_seconds_count"] >= 2
    assert samples['djl_operator_aws_calls_total{code="OK",operation="CreateEndpoint",service="sagemaker"}'] == 1
    assert samples['djl_operator_aws_calls_total{code="OK",operation="PutObject",service="s3"}'] == 1
    not_found = [k for k in samples if 'operation="DescribeEndpoint"' in k and 'code="ValidationException"' in k]
    assert not_found, "the first DescribeEndpoint (endpoint not there yet) is counted with its error code"

    records = [json.loads(line) for line in cluster.operator.log().splitlines() if line.startswith("{")]
    assert records, "no JSON log lines"
    assert {"time", "level", "logger", "message"} <= set(records[0])


def _this_start(log: str, start: int) -> list[str]:
    """The operator's own lines since its ``start``-th start (the harness writes the ===== markers)."""
    section = log.split(f"===== start {start} =====\n", 1)[1]
    return [line for line in section.splitlines() if line and not line.startswith("===== start ")]


def test_json_logs_of_a_whole_lifecycle_are_json_only_and_error_free(cluster: Cluster) -> None:
    cluster.operator.stop()
    cluster.operator.extra_args = ["--log-format", "json"]
    cluster.operator.start()
    cluster.apply(endpoint_manifest("lifecycle"))
    cluster.wait_ready("lifecycle")
    cluster.apply(endpoint_manifest("lifecycle", instance__count=2))
    cluster.wait_ready("lifecycle")
    cluster.delete("lifecycle")
    cluster.operator.stop()

    lines = _this_start(cluster.operator.log(), cluster.operator.starts)
    records = [json.loads(line) for line in lines]  # every line, kopf's own included, is one JSON object
    assert {r["logger"].split(".")[0] for r in records} >= {"kopf", "djl_operator"}
    assert [r for r in records if r["level"] in ("ERROR", "CRITICAL")] == []
    # The per-resource tick is not news: no INFO line per tick.
    assert [r for r in records if r["message"].startswith("Timer ") and r["level"] == "INFO"] == []


def test_text_logs_print_each_record_once(cluster: Cluster) -> None:
    cluster.operator.stop()
    cluster.operator.extra_args = []
    cluster.operator.start()
    cluster.apply(endpoint_manifest("once"))
    cluster.wait_ready("once")
    cluster.operator.stop()

    lines = _this_start(cluster.operator.log(), cluster.operator.starts)
    assert len([line for line in lines if "operator policy:" in line]) == 1
    created = [line for line in lines if "/once Creating: creating endpoint" in line]
    assert len(created) == 1, created
    assert all(not line.startswith("{") for line in lines)
