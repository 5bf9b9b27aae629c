"""spec.rollout <-> SageMaker's deployment guardrails, both ways, as pure functions.

* :func:`deployment_config`: the spec's rollout as UpdateEndpoint's ``DeploymentConfig``
  (BlueGreenUpdatePolicy/TrafficRoutingConfiguration or RollingUpdatePolicy, and
  AutoRollbackConfiguration); sizes are always ``CAPACITY_PERCENT``, so they hold whatever
  the instance count (SageMaker: canary <= 50 %, linear steps 10-50 %, rolling batches 5-50 %).
* :func:`progress`: DescribeEndpoint's ``PendingDeploymentSummary`` as the stage, the share of the
  traffic on the new config and when the stage ends. SageMaker reports the share and the baking
  time only in the VariantStatus message ("Baking for 600 seconds (WaitIntervalInSeconds) with
  traffic enabled on 10% capacity"); what the message does not say is left unknown.
* :func:`fired_alarms`: which of the spec's rollback alarms a rollback's FailureReason names.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from djl_operator.api import RolloutSpec, RolloutStrategy

_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*capacity")
_FULL = re.compile(r"full capacity", re.IGNORECASE)
_SECONDS = re.compile(r"(?:for|Waiting)\s+(\d+(?:\.\d+)?)\s+seconds")


def _percent(value: int) -> dict[str, Any]:
    return {"Type": "CAPACITY_PERCENT", "Value": value}


def deployment_config(rollout: RolloutSpec | None) -> dict[str, Any] | None:
    """UpdateEndpoint's DeploymentConfig for ``rollout``; None (SageMaker's all-at-once default) when unset."""
    if rollout is None:
        return None
    config: dict[str, Any] = {}
    if rollout.strategy is RolloutStrategy.ROLLING:
        assert rollout.rolling_batch_percent is not None  # the spec's validation requires it
        policy: dict[str, Any] = {
            "MaximumBatchSize": _percent(rollout.rolling_batch_percent),
            "WaitIntervalInSeconds": rollout.wait_interval_seconds,
        }
        if rollout.rollback_batch_percent is not None:
            policy["RollbackMaximumBatchSize"] = _percent(rollout.rollback_batch_percent)
        if rollout.maximum_execution_timeout_seconds is not None:
            policy["MaximumExecutionTimeoutInSeconds"] = rollout.maximum_execution_timeout_seconds
        config["RollingUpdatePolicy"] = policy
    else:
        routing: dict[str, Any] = {
            "Type": {
                RolloutStrategy.ALL_AT_ONCE: "ALL_AT_ONCE",
                RolloutStrategy.CANARY: "CANARY",
                RolloutStrategy.LINEAR: "LINEAR",
            }[rollout.strategy],
            "WaitIntervalInSeconds": rollout.wait_interval_seconds,
        }
        if rollout.strategy is RolloutStrategy.CANARY:
            assert rollout.canary_percent is not None
            routing["CanarySize"] = _percent(rollout.canary_percent)
        if rollout.strategy is RolloutStrategy.LINEAR:
            assert rollout.linear_step_percent is not None
            routing["LinearStepSize"] = _percent(rollout.linear_step_percent)
        blue_green: dict[str, Any] = {"TrafficRoutingConfiguration": routing}
        if rollout.termination_wait_seconds is not None:
            blue_green["TerminationWaitInSeconds"] = rollout.termination_wait_seconds
        if rollout.maximum_execution_timeout_seconds is not None:
            blue_green["MaximumExecutionTimeoutInSeconds"] = rollout.maximum_execution_timeout_seconds
        config["BlueGreenUpdatePolicy"] = blue_green
    if rollout.rollback_alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in rollout.rollback_alarms]}
    return config


@dataclass(frozen=True)
class Progress:
    """Where an update stands (DescribeEndpoint while Updating or RollingBack)."""

    config_name: str
    stage: str | None  # VariantStatus.Status of the new fleet
    percent: int | None  # share of the traffic on the new config, when SageMaker says it
    ends_at: dt.datetime | None  # when the stage ends, when SageMaker says how long it lasts
    message: str = ""


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return None


def progress(described: dict[str, Any]) -> Progress | None:
    """The update ``described`` (a DescribeEndpoint answer) is running, or None when none is."""
    pending = described.get("PendingDeploymentSummary")
    if not pending or described.get("EndpointStatus") not in ("Updating", "RollingBack"):
        return None
    variants = pending.get("ProductionVariants") or [{}]
    statuses = variants[0].get("VariantStatus") or []
    if not statuses:
        return Progress(pending.get("EndpointConfigName", ""), None, None, None)
    current = statuses[0]
    stage, message = current.get("Status"), current.get("StatusMessage") or ""
    percent: int | None = None
    if found := _PERCENT.search(message):
        percent = round(float(found.group(1)))
    elif _FULL.search(message):
        percent = 100
    elif stage == "Creating" and not message:
        percent = 0  # the new fleet is being provisioned: no traffic yet
    if described.get("EndpointStatus") == "RollingBack":
        percent = 0  # "all endpoint traffic rolls back to the old fleet"
    ends_at = None
    started = _as_datetime(current.get("StartTime"))
    if started is not None and (found := _SECONDS.search(message)):
        ends_at = started + dt.timedelta(seconds=float(found.group(1)))
    return Progress(pending.get("EndpointConfigName", ""), stage, percent, ends_at, message)


def fired_alarms(failure_reason: str | None, alarms: list[str] | tuple[str, ...]) -> list[str]:
    """The rollback alarms a FailureReason names (AWS does not document its wording: the names are the clue)."""
    if not failure_reason:
        return []
    return [name for name in alarms if name in failure_reason]
