"""CloudWatch metric alarms: PutMetricAlarm, DescribeAlarms, SetAlarmState, DeleteAlarms.

What SageMaker's deployment guardrails read: "If any of your alarms trip during the specified
monitoring period, SageMaker initiates a complete rollback"
(https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html).
Requests are validated against botocore's ``cloudwatch`` model first. Semantics, from the
CloudWatch API reference:

* a new alarm starts in ``INSUFFICIENT_DATA`` ("Unchecked: Initial alarm creation");
  "When you update an existing alarm, its state is left unchanged, but the update completely
  overwrites the previous configuration of the alarm"
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html);
  a metric alarm names one metric (``MetricName``) or a math expression (``Metrics``), not both;
* SetAlarmState "temporarily sets the state of an alarm"; ``StateReasonData`` must be JSON
  (``InvalidFormat``); an unknown alarm is ``ResourceNotFound``;
* DescribeAlarms filters by ``AlarmNames`` or ``AlarmNamePrefix`` (not both), ``StateValue``
  and ``AlarmTypes`` (metric alarms when omitted), pages with ``MaxRecords`` (default 50) and
  ``NextToken``;
* DeleteAlarms with a name that does not exist is ``ResourceNotFound`` and deletes nothing.

The emulator does not evaluate metrics: an alarm changes state only through SetAlarmState.

Wire protocols: botocore picks the first protocol of the model's ``protocols`` list it speaks
(``smithy-rpc-v2-cbor`` for botocore >= 1.40-ish, then ``json``, then ``query``); the emulator
serves RPC v2 CBOR (``POST /service/GraniteServiceVersion20100801/operation/<Op>``) and the
awsJson1_0 form (``X-Amz-Target: GraniteServiceVersion20100801.<Op>``). The service is
``awsQueryCompatible``: errors carry ``x-amzn-query-error: <Code>;Sender`` so SDKs report the
Query-era codes (``ResourceNotFound``, ``ValidationError``...). The Query (form/XML) protocol
is not served.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .cbor import Timestamp
from .errors import ApiError

SERVICE = "cloudwatch"
TARGET_PREFIX = "GraniteServiceVersion20100801"
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
_DEFAULT_RECORDS = 50
# Shape names of the Query codes, for the RPC v2 ``__type``.
_SHAPES = {
    "ResourceNotFound": "ResourceNotFound",
    "InvalidFormat": "InvalidFormatFault",
    "InvalidNextToken": "InvalidNextToken",
    "LimitExceeded": "LimitExceededFault",
    "ValidationError": "ValidationError",
    "InvalidParameterCombination": "InvalidParameterCombinationException",
}


def error_shape(code: str) -> str:
    return f"com.amazonaws.cloudwatch#{_SHAPES.get(code, code)}"


def validation_error(message: str) -> ApiError:
    return ApiError("ValidationError", message)


@dataclass
class _Alarm:
    name: str
    arn: str
    request: dict[str, Any]
    configured: float
    state: str = "INSUFFICIENT_DATA"
    reason: str = "Unchecked: Initial alarm creation"
    reason_data: str | None = None
    updated: float = 0.0
    transitioned: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlarmState:
    """What a reader of the alarm (SageMaker's deployment monitor) needs."""

    state: str
    since: float  # when the alarm last changed state


# The MetricAlarm members that are copied from PutMetricAlarm's request as given.
_CONFIG_MEMBERS = (
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


class CloudWatch:
    """Thread-safe in-memory metric alarms. ``handle(operation, params)`` -> response dict."""

    def __init__(self, region: str, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.region, self.account_id = region, account_id
        self._clock = clock
        self._lock = threading.Lock()
        self._alarms: dict[str, _Alarm] = {}
        self._ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "PutMetricAlarm": self.put_metric_alarm,
            "DescribeAlarms": self.describe_alarms,
            "SetAlarmState": self.set_alarm_state,
            "DeleteAlarms": self.delete_alarms,
        }

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self._ops)

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return errors.operation(self._ops, "CloudWatch", operation)(params)

    def reset(self) -> None:
        with self._lock:
            self._alarms.clear()

    def _now(self) -> float:
        return round(self._clock(), 3)

    def put_metric_alarm(self, p: dict[str, Any]) -> dict[str, Any]:
        if bool(p.get("MetricName")) == bool(p.get("Metrics")):
            raise validation_error("Exactly one of MetricName and Metrics must be specified.")
        for required in ("EvaluationPeriods", "ComparisonOperator"):
            if p.get(required) is None:
                raise validation_error(f"The parameter {required} is required.")
        if p.get("MetricName") and not (p.get("Statistic") or p.get("ExtendedStatistic")):
            raise validation_error("Either Statistic or ExtendedStatistic must be specified.")
        name = p["AlarmName"]
        now = self._now()
        request = {k: p[k] for k in _CONFIG_MEMBERS if p.get(k) is not None}
        with self._lock:
            alarm = self._alarms.get(name)
            if alarm is None:
                arn = f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{name}"
                tags = {t["Key"]: t["Value"] for t in p.get("Tags") or []}
                self._alarms[name] = _Alarm(name, arn, request, now, updated=now, transitioned=now, tags=tags)
            else:
                alarm.request, alarm.configured = request, now
        return {}

    def _describe(self, alarm: _Alarm) -> dict[str, Any]:
        out: dict[str, Any] = {
            "AlarmName": alarm.name,
            "AlarmArn": alarm.arn,
            "AlarmConfigurationUpdatedTimestamp": Timestamp(alarm.configured),
            "ActionsEnabled": True,
            "OKActions": [],
            "AlarmActions": [],
            "InsufficientDataActions": [],
            "StateValue": alarm.state,
            "StateReason": alarm.reason,
            "StateUpdatedTimestamp": Timestamp(alarm.updated),
            "StateTransitionedTimestamp": Timestamp(alarm.transitioned),
            "Dimensions": [],
        }
        out.update(alarm.request)
        if alarm.reason_data is not None:
            out["StateReasonData"] = alarm.reason_data
        return out

    def describe_alarms(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("AlarmNames") and p.get("AlarmNamePrefix"):
            raise ApiError(
                "InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot be specified together."
            )
        types = p.get("AlarmTypes") or ["MetricAlarm"]
        with self._lock:
            alarms = sorted(self._alarms.values(), key=lambda a: a.name) if "MetricAlarm" in types else []
            if p.get("AlarmNames"):
                wanted = set(p["AlarmNames"])
                alarms = [a for a in alarms if a.name in wanted]
            if p.get("AlarmNamePrefix"):
                alarms = [a for a in alarms if a.name.startswith(p["AlarmNamePrefix"])]
            if p.get("StateValue"):
                alarms = [a for a in alarms if a.state == p["StateValue"]]
            token = p.get("NextToken")
            start = 0
            if token:
                if not token.isdigit() or int(token) > len(alarms):
                    raise ApiError("InvalidNextToken", "The service couldn't process the NextToken.")
                start = int(token)
            size = int(p.get("MaxRecords") or _DEFAULT_RECORDS)
            page = [self._describe(a) for a in alarms[start : start + size]]
        out: dict[str, Any] = {"MetricAlarms": page, "CompositeAlarms": []}
        if start + size < len(alarms):
            out["NextToken"] = str(start + size)
        return out

    def set_alarm_state(self, p: dict[str, Any]) -> dict[str, Any]:
        data = p.get("StateReasonData")
        if data is not None:
            try:
                json.loads(data)
            except ValueError as exc:
                raise ApiError("InvalidFormat", f"StateReasonData is not valid JSON: {exc}") from exc
        now = self._now()
        with self._lock:
            alarm = self._alarms.get(p["AlarmName"])
            if alarm is None:
                raise ApiError("ResourceNotFound", f"Alarm {p['AlarmName']} not found", 404)
            if alarm.state != p["StateValue"]:
                alarm.transitioned = now
            alarm.state, alarm.reason, alarm.reason_data, alarm.updated = p["StateValue"], p["StateReason"], data, now
        return {}

    def delete_alarms(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            missing = [n for n in p["AlarmNames"] if n not in self._alarms]
            if missing:
                raise ApiError("ResourceNotFound", f"Alarm(s) {', '.join(missing)} not found", 404)
            for name in p["AlarmNames"]:
                del self._alarms[name]
        return {}

    # ---- for SageMaker ----

    def states(self, names: list[str]) -> dict[str, AlarmState]:
        """The state of each named alarm that exists (a missing alarm is simply absent)."""
        with self._lock:
            return {
                n: AlarmState(self._alarms[n].state, self._alarms[n].transitioned) for n in names if n in self._alarms
            }

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._alarms)
