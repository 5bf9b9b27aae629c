"""CloudWatch alarms through stock boto3 (awsJson1_0) and botocore's own Smithy RPC v2 CBOR codec."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from djl_operator_kit.emulator import Emulator
from djl_operator_kit.emulator.validation import response_violations

ALARM: dict[str, Any] = {
    "MetricName": "Invocation5XXErrors",
    "Namespace": "AWS/SageMaker",
    "Statistic": "Sum",
    "Dimensions": [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}],
    "Period": 60,
    "EvaluationPeriods": 1,
    "Threshold": 1.0,
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
}


@pytest.fixture
def cw(emulator: Emulator) -> Any:
    return emulator.client("cloudwatch", config=Config(retries={"total_max_attempts": 1}))


def test_alarm_lifecycle(emulator: Emulator, cw: Any) -> None:
    cw.put_metric_alarm(AlarmName="ep-5xx", **ALARM)
    cw.put_metric_alarm(AlarmName="other", **ALARM)
    [alarm] = cw.describe_alarms(AlarmNames=["ep-5xx"])["MetricAlarms"]
    assert alarm["StateValue"] == "INSUFFICIENT_DATA" and alarm["StateReason"] == "Unchecked: Initial alarm creation"
    assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:{emulator.account_id}:alarm:ep-5xx"
    assert alarm["Dimensions"] == ALARM["Dimensions"] and alarm["Threshold"] == 1.0
    cw.set_alarm_state(AlarmName="ep-5xx", StateValue="ALARM", StateReason="test", StateReasonData='{"n": 1}')
    assert [a["AlarmName"] for a in cw.describe_alarms(StateValue="ALARM")["MetricAlarms"]] == ["ep-5xx"]
    # An update keeps the state and replaces the configuration.
    cw.put_metric_alarm(AlarmName="ep-5xx", **{**ALARM, "Threshold": 5.0})
    [alarm] = cw.describe_alarms(AlarmNamePrefix="ep-")["MetricAlarms"]
    assert (alarm["StateValue"], alarm["Threshold"], alarm["StateReasonData"]) == ("ALARM", 5.0, '{"n": 1}')
    page = cw.describe_alarms(MaxRecords=1)
    assert [a["AlarmName"] for a in page["MetricAlarms"]] == ["ep-5xx"]
    assert [a["AlarmName"] for a in cw.describe_alarms(NextToken=page["NextToken"])["MetricAlarms"]] == ["other"]
    cw.delete_alarms(AlarmNames=["ep-5xx", "other"])
    assert cw.describe_alarms()["MetricAlarms"] == []
    calls = [(c.operation, c.error_code) for c in emulator.calls(service="cloudwatch")]
    assert calls[0] == ("PutMetricAlarm", None) and calls[-1] == ("DescribeAlarms", None)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda cw: cw.set_alarm_state(AlarmName="nope", StateValue="OK", StateReason="x"), "ResourceNotFound"),
        (lambda cw: cw.delete_alarms(AlarmNames=["nope"]), "ResourceNotFound"),
        (
            lambda cw: cw.set_alarm_state(AlarmName="a", StateValue="OK", StateReason="x", StateReasonData="{"),
            "InvalidFormat",
        ),
        (
            lambda cw: cw.put_metric_alarm(AlarmName="b", EvaluationPeriods=1, ComparisonOperator="LessThanThreshold"),
            "ValidationError",
        ),
        (lambda cw: cw.describe_alarms(AlarmNames=["a"], AlarmNamePrefix="a"), "InvalidParameterCombination"),
        (lambda cw: cw.describe_alarms(NextToken="bogus"), "InvalidNextToken"),
    ],
)  # fmt: skip
def test_errors_carry_the_query_codes(cw: Any, call: Any, code: str) -> None:
    cw.put_metric_alarm(AlarmName="a", **ALARM)
    with pytest.raises(ClientError) as info:
        call(cw)
    assert info.value.response["Error"]["Code"] == code


def test_faults_reach_cloudwatch(emulator: Emulator, cw: Any) -> None:
    emulator.faults.deny("DescribeAlarms")
    with pytest.raises(ClientError) as info:
        cw.describe_alarms()
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert "cloudwatch:DescribeAlarms" in info.value.response["Error"]["Message"]


def _rpc_v2_cbor(emulator: Emulator, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One call as botocore's smithy-rpc-v2-cbor serializer and parser make and read it."""
    model = botocore.session.get_session().get_service_model("cloudwatch")
    op = model.operation_model(operation)
    request = create_serializer("smithy-rpc-v2-cbor").serialize_to_request(params, op)
    http = AWSRequest(
        method=request["method"],
        url=emulator.url + request["url_path"],
        data=request["body"],
        headers=request["headers"],
    ).prepare()
    req = urllib.request.Request(http.url, data=http.body, headers=dict(http.headers), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            status, headers, body = answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as err:
        status, headers, body = err.code, dict(err.headers), err.read()
    assert headers["smithy-protocol"] == "rpc-v2-cbor"
    lowered = {k.lower(): v for k, v in headers.items()}
    parsed = create_parser("smithy-rpc-v2-cbor").parse(
        {"status_code": status, "headers": lowered, "body": body}, op.output_shape
    )
    return status, parsed


def test_the_rpc_v2_cbor_protocol(emulator: Emulator) -> None:
    assert _rpc_v2_cbor(emulator, "PutMetricAlarm", {"AlarmName": "cbor", **ALARM})[0] == 200
    assert (
        _rpc_v2_cbor(emulator, "SetAlarmState", {"AlarmName": "cbor", "StateValue": "ALARM", "StateReason": "r"})[0]
        == 200
    )
    status, parsed = _rpc_v2_cbor(emulator, "DescribeAlarms", {"AlarmNames": ["cbor"]})
    assert status == 200
    [alarm] = parsed["MetricAlarms"]
    assert (alarm["StateValue"], alarm["Period"], alarm["Threshold"]) == ("ALARM", 60, 1.0)
    assert alarm["StateUpdatedTimestamp"].timestamp() > 1.7e9  # tag 1 epoch seconds
    data = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
    assert response_violations("DescribeAlarms", data, "cloudwatch", wire=False) == []
    status, parsed = _rpc_v2_cbor(emulator, "SetAlarmState", {"AlarmName": "x", "StateValue": "OK", "StateReason": "r"})
    assert status == 404 and parsed["Error"]["Code"] == "ResourceNotFound"
    assert [c.operation for c in emulator.calls(service="cloudwatch")] == [
        "PutMetricAlarm",
        "SetAlarmState",
        "DescribeAlarms",
        "SetAlarmState",
    ]


def test_json_wire_answers_json(emulator: Emulator) -> None:
    body = json.dumps({"AlarmNames": []}).encode()
    req = urllib.request.Request(
        emulator.url + "/",
        data=body,
        headers={
            "X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms",
            "Content-Type": "application/x-amz-json-1.0",
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as answer:
        assert answer.headers["Content-Type"] == "application/x-amz-json-1.0"
        assert json.loads(answer.read()) == {"MetricAlarms": [], "CompositeAlarms": []}
