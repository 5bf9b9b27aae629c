"""Deployment guardrails: what UpdateEndpoint's ``DeploymentConfig`` asks for, as a plan of phases.

Pure functions (no clock, no lock): :func:`check` refuses what SageMaker refuses, :func:`phases`
turns a valid config into the traffic steps the endpoint walks through. Sources:

* TrafficRoutingConfig (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html):
  ALL_AT_ONCE shifts "in a single step"; CANARY "in two steps. The first step is the canary, which
  is a small portion of the traffic. The second step is the remainder"; LINEAR "in n steps of a
  configurable size"; ``WaitIntervalInSeconds`` is "the waiting time between incremental steps";
  CanarySize "must be less than or equal to 50% of the variant's total instance count";
  LinearStepSize "must be 10-50% of the variant's total instance count".
* BlueGreenUpdatePolicy: ``TerminationWaitInSeconds`` is the "additional waiting time ... after the
  completion of an endpoint deployment before terminating the old endpoint fleet";
  ``MaximumExecutionTimeoutInSeconds`` "should be larger than the total waiting time specified in
  TerminationWaitInSeconds and WaitIntervalInSeconds"; "Only one update policy should be used in
  the deployment configuration" (CloudFormation's BlueGreenUpdatePolicy reference).
* RollingUpdatePolicy (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_RollingUpdatePolicy.html):
  MaximumBatchSize "must be between 5% to 50% of the variant's total instance count";
  ``WaitIntervalInSeconds`` is "the length of the baking period, during which SageMaker monitors
  alarms for each batch"; without RollbackMaximumBatchSize the old fleet comes back at once.
  Rolling deployments are not offered for serverless or multi-variant endpoints (deployment
  guardrails exclusions, https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html).
* Alarms: "If any of your alarms trip during the specified monitoring period, SageMaker initiates
  a complete rollback" (deployment-guardrails-configuration.html). The emulator monitors them from
  the first traffic shift until the deployment completes (baking and the termination wait).

* Canary: "If none of the alarms trip, then all of the traffic shifts to the green fleet and there
  is a final baking period" (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html):
  every step, the last included, bakes ``WaitIntervalInSeconds``.

Modelling choices where the documentation is silent (marked so in the messages): a
CAPACITY_PERCENT canary/step sends that percentage of the traffic to the new fleet (an
INSTANCE_COUNT one sends count/total); the final bake lasts ``WaitIntervalInSeconds`` too (ALL_AT_ONCE
bakes it after its single step); the VariantStatus messages, and the FailureReason of an alarm
rollback, are worded by the emulator (AWS does not document their text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import errors


@dataclass(frozen=True)
class Phase:
    """One stage of a deployment after the new fleet is provisioned."""

    status: str  # VariantStatus: "ActivatingTraffic", "Baking" or "Creating" (a rolling batch)
    percent: float  # share of the traffic on the new fleet during the phase, 0..100
    seconds: float  # how long the phase lasts
    message: str


@dataclass(frozen=True)
class Plan:
    phases: tuple[Phase, ...]
    alarms: tuple[str, ...]
    timeout: float | None  # MaximumExecutionTimeoutInSeconds
    rollback_batches: int  # how many steps the old fleet takes to come back
    kind: str  # "ALL_AT_ONCE", "CANARY", "LINEAR" or "ROLLING"


def _size_fraction(size: dict[str, Any], total: int) -> float:
    """A CapacitySize as a fraction of the variant's instances."""
    if size["Type"] == "CAPACITY_PERCENT":
        return float(size["Value"]) / 100.0
    return float(size["Value"]) / max(total, 1)


def _check_size(size: dict[str, Any] | None, total: int, low: float, high: float, what: str) -> None:
    if size is None:
        return
    fraction = _size_fraction(size, total)
    if not (low - 1e-9 <= fraction <= high + 1e-9):
        raise errors.validation(
            f"{what} {size['Value']} ({size['Type']}) must be between {low:.0%} and {high:.0%} of the variant's "
            f"total instance count ({total})."
        )


def check(deployment: dict[str, Any], variants: list[dict[str, Any]]) -> None:
    """Refuse (ValidationException) a DeploymentConfig SageMaker refuses for a config with ``variants``."""
    blue_green = deployment.get("BlueGreenUpdatePolicy")
    rolling = deployment.get("RollingUpdatePolicy")
    if blue_green and rolling:
        raise errors.validation("Only one of BlueGreenUpdatePolicy and RollingUpdatePolicy can be specified.")
    total = sum(int(v.get("InitialInstanceCount") or 0) for v in variants)
    if blue_green:
        routing = blue_green["TrafficRoutingConfiguration"]
        kind = routing["Type"]
        canary, linear = routing.get("CanarySize"), routing.get("LinearStepSize")
        if kind == "CANARY" and canary is None:
            raise errors.validation("CanarySize must be specified when the TrafficRoutingConfiguration Type is CANARY.")
        if kind == "LINEAR" and linear is None:
            raise errors.validation(
                "LinearStepSize must be specified when the TrafficRoutingConfiguration Type is LINEAR."
            )
        if canary is not None and kind != "CANARY":
            raise errors.validation(
                "CanarySize can only be specified when the TrafficRoutingConfiguration Type is CANARY."
            )
        if linear is not None and kind != "LINEAR":
            raise errors.validation(
                "LinearStepSize can only be specified when the TrafficRoutingConfiguration Type is LINEAR."
            )
        _check_size(canary, total, 0.0, 0.5, "CanarySize")
        _check_size(linear, total, 0.1, 0.5, "LinearStepSize")
        timeout = blue_green.get("MaximumExecutionTimeoutInSeconds")
        waits = int(routing["WaitIntervalInSeconds"]) + int(blue_green.get("TerminationWaitInSeconds") or 0)
        if timeout is not None and timeout <= waits:
            raise errors.validation(
                f"MaximumExecutionTimeoutInSeconds ({timeout}) must be larger than the total waiting time of "
                f"TerminationWaitInSeconds and WaitIntervalInSeconds ({waits})."
            )
    if rolling:
        if len(variants) != 1 or variants[0].get("ServerlessConfig") is not None:
            raise errors.validation(
                "RollingUpdatePolicy is only supported for endpoints with a single instance-based production variant."
            )
        _check_size(rolling["MaximumBatchSize"], total, 0.05, 0.5, "MaximumBatchSize")
        timeout = rolling.get("MaximumExecutionTimeoutInSeconds")
        if timeout is not None and timeout <= int(rolling["WaitIntervalInSeconds"]):
            raise errors.validation(
                f"MaximumExecutionTimeoutInSeconds ({timeout}) must be larger than WaitIntervalInSeconds "
                f"({rolling['WaitIntervalInSeconds']})."
            )


def _pct(value: float) -> str:
    return f"{value:g}%"


def _shift(percent: float, wait: float) -> tuple[Phase, Phase]:
    return (
        Phase("ActivatingTraffic", percent, 0.0, f"Activating traffic on {_pct(percent)} capacity"),
        Phase(
            "Baking",
            percent,
            wait,
            f"Baking for {wait:g} seconds (WaitIntervalInSeconds) with traffic enabled on {_pct(percent)} capacity",
        ),
    )


def plan(deployment: dict[str, Any] | None, variants: list[dict[str, Any]], batch_seconds: float) -> Plan:
    """The phases of a (checked) deployment; ``batch_seconds`` is how long a rolling batch takes to provision."""
    deployment = deployment or {}
    alarms = tuple(a["AlarmName"] for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms") or [])
    total = sum(int(v.get("InitialInstanceCount") or 0) for v in variants)
    rolling = deployment.get("RollingUpdatePolicy")
    if rolling:
        wait = float(rolling["WaitIntervalInSeconds"])
        batch = max(1, math.ceil(_size_fraction(rolling["MaximumBatchSize"], total) * total - 1e-9))
        phases: list[Phase] = []
        done = 0
        while done < total:
            done = min(total, done + batch)
            percent = 100.0 * done / total
            if phases:  # the first batch is provisioned with the new fleet
                phases.append(
                    Phase(
                        "Creating",
                        phases[-1].percent,
                        batch_seconds,
                        f"Provisioning batch up to {done}/{total} instances",
                    )
                )
            phases.extend(_shift(percent, wait))
        rollback = rolling.get("RollbackMaximumBatchSize")
        rollback_batch = (
            max(1, math.ceil(_size_fraction(rollback, total) * total - 1e-9)) if rollback else max(total, 1)
        )
        return Plan(
            tuple(phases),
            alarms,
            rolling.get("MaximumExecutionTimeoutInSeconds"),
            math.ceil(max(total, 1) / rollback_batch),
            "ROLLING",
        )
    blue_green = deployment.get("BlueGreenUpdatePolicy") or {}
    routing = blue_green.get("TrafficRoutingConfiguration") or {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    kind, wait = routing["Type"], float(routing["WaitIntervalInSeconds"])
    if kind == "CANARY":
        steps = [100.0 * _size_fraction(routing["CanarySize"], total), 100.0]
    elif kind == "LINEAR":
        step = 100.0 * _size_fraction(routing["LinearStepSize"], total)
        steps = [min(100.0, step * (i + 1)) for i in range(math.ceil(100.0 / step - 1e-9))]
    else:
        steps = [100.0]
    phases = [p for s in steps for p in _shift(s, wait)]
    termination = float(blue_green.get("TerminationWaitInSeconds") or 0)
    if termination:
        phases.append(
            Phase(
                "Baking",
                100.0,
                termination,
                f"Waiting {termination:g} seconds (TerminationWaitInSeconds) before terminating the old fleet",
            )
        )
    return Plan(tuple(phases), alarms, blue_green.get("MaximumExecutionTimeoutInSeconds"), 1, kind)


def alarm_reason(fired: list[str]) -> str:
    """FailureReason after an alarm rollback (the wording is the emulator's; AWS does not document it)."""
    names = ", ".join(fired)
    return (
        f"Deployment was rolled back because CloudWatch alarm(s) [{names}] went into ALARM state "
        "during the deployment (AutoRollbackConfiguration)."
    )


def timeout_reason(seconds: float) -> str:
    return f"Deployment timed out after {seconds:g} seconds (MaximumExecutionTimeoutInSeconds) and was rolled back."
