"""Every response the emulator serves has AWS's shape: botocore's output model, and the members AWS always sends.

One scenario drives every served operation through stock boto3 and captures each raw
response. Then, for each operation:

* JSON bodies (SageMaker, the Tagging API) are checked *as sent* against botocore's output
  shape: no undeclared member, every required member, right types (timestamps as epoch-second
  numbers), enum values; XML answers (STS, S3 through moto) are checked as botocore parsed them;
* the members in ``ALWAYS`` are present. Its sources, cited per row:
  ``[ref]`` the AWS API reference marks the response element "Required: Yes" (for these
  operations the same set botocore's model marks required); ``[doc]`` the reference documents
  the element as always set (a default it states, or "returns"); ``[obs]`` behaviour real AWS
  shows that the reference leaves implicit, as reported in issue 18 by a client that copies
  the response into its desired state.

``test_every_served_operation_is_covered`` fails when the emulator serves an operation this
file does not exercise, so every new AWS API lands here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config

from djl_operator_kit.emulator import Emulator
from djl_operator_kit.emulator import sts as sts_api
from djl_operator_kit.emulator.validation import response_violations
from tests.plugins.emulator import IMAGE, ROLE, echo_artifact, upload, wait_status

SM = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_{}.html"
RT = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_{}.html"
TAG = "https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_{}.html"
STS = "https://docs.aws.amazon.com/STS/latest/APIReference/API_{}.html"
S3 = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_{}.html"
AAS = "https://docs.aws.amazon.com/autoscaling/application/APIReference/API_{}.html"
CW = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_{}.html"


def _aas_items(member: str, shape: str, required: tuple[str, ...]) -> list[tuple[str, str]]:
    """A Describe* list (documented as the list of what matched, empty when nothing) and its items'
    members the reference marks "Required: Yes"."""
    rows = [(member, "[doc] " + AAS.format("Describe" + member))]
    return rows + [(f"{member}[].{name}", "[ref] " + AAS.format(shape)) for name in required]


_KEY = ("ServiceNamespace", "ResourceId", "ScalableDimension")

# (service, operation) -> [(member path, source)]; "a[].b" means member b of every item of list a.
ALWAYS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("sagemaker", "CreateModel"): [("ModelArn", "[ref] " + SM.format("CreateModel"))],
    ("sagemaker", "CreateEndpointConfig"): [("EndpointConfigArn", "[ref] " + SM.format("CreateEndpointConfig"))],
    ("sagemaker", "CreateEndpoint"): [("EndpointArn", "[ref] " + SM.format("CreateEndpoint"))],
    ("sagemaker", "UpdateEndpoint"): [("EndpointArn", "[ref] " + SM.format("UpdateEndpoint"))],
    ("sagemaker", "UpdateEndpointWeightsAndCapacities"): [
        ("EndpointArn", "[ref] " + SM.format("UpdateEndpointWeightsAndCapacities"))
    ],
    ("sagemaker", "DescribeModel"): [
        ("ModelName", "[ref] " + SM.format("DescribeModel")),
        ("ModelArn", "[ref] " + SM.format("DescribeModel")),
        ("CreationTime", "[ref] " + SM.format("DescribeModel")),
        ("ExecutionRoleArn", "[obs] the role CreateModel was given is always echoed"),
        ("PrimaryContainer.Image", "[obs] the container CreateModel was given is always echoed"),
        ("EnableNetworkIsolation", "[obs] false when CreateModel did not set it (issue 18)"),
    ],
    ("sagemaker", "DescribeEndpointConfig"): [
        ("EndpointConfigName", "[ref] " + SM.format("DescribeEndpointConfig")),
        ("EndpointConfigArn", "[ref] " + SM.format("DescribeEndpointConfig")),
        ("ProductionVariants", "[ref] " + SM.format("DescribeEndpointConfig")),
        ("CreationTime", "[ref] " + SM.format("DescribeEndpointConfig")),
        ("EnableNetworkIsolation", "[obs] false when CreateEndpointConfig did not set it (issue 18)"),
        ("ProductionVariants[].VariantName", "[ref] " + SM.format("ProductionVariant")),
        ("ProductionVariants[].ModelName", "[obs] echoed from CreateEndpointConfig"),
        ("ProductionVariants[].InstanceType", "[obs] echoed from CreateEndpointConfig"),
        ("ProductionVariants[].InitialInstanceCount", "[obs] echoed from CreateEndpointConfig"),
        (
            "ProductionVariants[].InitialVariantWeight",
            "[doc] 'The default value is 1.0' " + SM.format("ProductionVariant"),
        ),
    ],
    ("sagemaker", "DescribeEndpoint"): [
        ("EndpointName", "[ref] " + SM.format("DescribeEndpoint")),
        ("EndpointArn", "[ref] " + SM.format("DescribeEndpoint")),
        ("EndpointStatus", "[ref] " + SM.format("DescribeEndpoint")),
        ("CreationTime", "[ref] " + SM.format("DescribeEndpoint")),
        ("LastModifiedTime", "[ref] " + SM.format("DescribeEndpoint")),
        ("EndpointConfigName", "[obs] the config the endpoint runs, in every status"),
    ],
    ("sagemaker", "ListModels"): [
        ("Models", "[ref] " + SM.format("ListModels")),
        ("Models[].ModelName", "[ref] " + SM.format("ModelSummary")),
        ("Models[].ModelArn", "[ref] " + SM.format("ModelSummary")),
        ("Models[].CreationTime", "[ref] " + SM.format("ModelSummary")),
    ],
    ("sagemaker", "ListEndpointConfigs"): [
        ("EndpointConfigs", "[ref] " + SM.format("ListEndpointConfigs")),
        ("EndpointConfigs[].EndpointConfigName", "[ref] " + SM.format("EndpointConfigSummary")),
        ("EndpointConfigs[].EndpointConfigArn", "[ref] " + SM.format("EndpointConfigSummary")),
        ("EndpointConfigs[].CreationTime", "[ref] " + SM.format("EndpointConfigSummary")),
    ],
    ("sagemaker", "ListEndpoints"): [
        ("Endpoints", "[ref] " + SM.format("ListEndpoints")),
        ("Endpoints[].EndpointName", "[ref] " + SM.format("EndpointSummary")),
        ("Endpoints[].EndpointArn", "[ref] " + SM.format("EndpointSummary")),
        ("Endpoints[].CreationTime", "[ref] " + SM.format("EndpointSummary")),
        ("Endpoints[].LastModifiedTime", "[ref] " + SM.format("EndpointSummary")),
        ("Endpoints[].EndpointStatus", "[ref] " + SM.format("EndpointSummary")),
    ],
    ("sagemaker", "AddTags"): [("Tags", "[doc] 'A list of tags associated with the resource' " + SM.format("AddTags"))],
    ("sagemaker", "ListTags"): [
        ("Tags", "[doc] 'An array of Tag objects' (empty when none) " + SM.format("ListTags")),
        ("Tags[].Key", "[ref] " + SM.format("Tag")),
        ("Tags[].Value", "[ref] " + SM.format("Tag")),
    ],
    ("sagemaker", "DeleteTags"): [],
    ("sagemaker", "DeleteModel"): [],
    ("sagemaker", "DeleteEndpointConfig"): [],
    ("sagemaker", "DeleteEndpoint"): [],
    ("sagemaker-runtime", "InvokeEndpoint"): [
        ("Body", "[ref] " + RT.format("InvokeEndpoint")),
        (
            "ContentType",
            "[doc] 'The MIME type of the inference returned from the model container' " + RT.format("InvokeEndpoint"),
        ),
        (
            "InvokedProductionVariant",
            "[doc] 'Identifies the production variant that was invoked' " + RT.format("InvokeEndpoint"),
        ),
    ],
    ("sagemaker-runtime", "InvokeEndpointWithResponseStream"): [
        ("Body", "[ref] " + RT.format("InvokeEndpointWithResponseStream")),
        (
            "ContentType",
            "[doc] 'The MIME type of the inference returned from the model container' "
            + RT.format("InvokeEndpointWithResponseStream"),
        ),
        (
            "InvokedProductionVariant",
            "[doc] 'Identifies the production variant that was invoked' "
            + RT.format("InvokeEndpointWithResponseStream"),
        ),
    ],
    ("resourcegroupstaggingapi", "GetResources"): [
        ("ResourceTagMappingList", "[doc] " + TAG.format("GetResources")),
        ("PaginationToken", "[doc] empty on the last page; paginators stop on it " + TAG.format("GetResources")),
        ("ResourceTagMappingList[].ResourceARN", "[doc] " + TAG.format("ResourceTagMapping")),
        ("ResourceTagMappingList[].Tags", "[doc] " + TAG.format("ResourceTagMapping")),
    ],
    ("sts", "GetCallerIdentity"): [
        ("UserId", "[doc] " + STS.format("GetCallerIdentity")),
        ("Account", "[doc] " + STS.format("GetCallerIdentity")),
        ("Arn", "[doc] " + STS.format("GetCallerIdentity")),
    ],
    ("application-autoscaling", "RegisterScalableTarget"): [
        ("ScalableTargetARN", "[doc] 'The ARN of the scalable target' " + AAS.format("RegisterScalableTarget"))
    ],
    ("application-autoscaling", "DescribeScalableTargets"): _aas_items(
        "ScalableTargets", "ScalableTarget", (*_KEY, "MinCapacity", "MaxCapacity", "RoleARN", "CreationTime")
    ),
    ("application-autoscaling", "DeregisterScalableTarget"): [],
    ("application-autoscaling", "PutScalingPolicy"): [
        ("PolicyARN", "[ref] " + AAS.format("PutScalingPolicy")),
        (
            "Alarms",
            "[doc] 'The CloudWatch alarms created for the target tracking scaling policy' "
            + AAS.format("PutScalingPolicy"),
        ),
        ("Alarms[].AlarmName", "[ref] " + AAS.format("Alarm")),
        ("Alarms[].AlarmARN", "[ref] " + AAS.format("Alarm")),
    ],
    ("application-autoscaling", "DescribeScalingPolicies"): [
        *_aas_items(
            "ScalingPolicies", "ScalingPolicy", ("PolicyARN", "PolicyName", *_KEY, "PolicyType", "CreationTime")
        ),
        ("ScalingPolicies[].Alarms", "[obs] target tracking policies list the alarms PutScalingPolicy created"),
    ],
    ("application-autoscaling", "DeleteScalingPolicy"): [],
    ("application-autoscaling", "PutScheduledAction"): [],
    ("application-autoscaling", "DescribeScheduledActions"): _aas_items(
        "ScheduledActions",
        "ScheduledAction",
        ("ScheduledActionName", "ScheduledActionARN", "ServiceNamespace", "Schedule", "ResourceId", "CreationTime"),
    ),
    ("application-autoscaling", "DeleteScheduledAction"): [],
    ("application-autoscaling", "DescribeScalingActivities"): _aas_items(
        "ScalingActivities",
        "ScalingActivity",
        ("ActivityId", *_KEY, "Description", "Cause", "StartTime", "StatusCode"),
    ),
    ("cloudwatch", "PutMetricAlarm"): [],
    ("cloudwatch", "SetAlarmState"): [],
    ("cloudwatch", "DeleteAlarms"): [],
    ("cloudwatch", "DescribeAlarms"): [
        ("MetricAlarms", "[doc] 'The information about any metric alarms returned' " + CW.format("DescribeAlarms")),
        ("MetricAlarms[].AlarmName", "[doc] " + CW.format("MetricAlarm")),
        ("MetricAlarms[].AlarmArn", "[doc] " + CW.format("MetricAlarm")),
        ("MetricAlarms[].StateValue", "[doc] " + CW.format("MetricAlarm")),
        ("MetricAlarms[].StateReason", "[doc] " + CW.format("MetricAlarm")),
        ("MetricAlarms[].StateUpdatedTimestamp", "[doc] " + CW.format("MetricAlarm")),
    ],
    ("s3", "CreateBucket"): [("Location", "[doc] " + S3.format("CreateBucket"))],
    ("s3", "PutObject"): [("ETag", "[doc] " + S3.format("PutObject"))],
    ("s3", "HeadObject"): [
        ("ETag", "[doc] " + S3.format("HeadObject")),
        ("ContentLength", "[doc] " + S3.format("HeadObject")),
        ("LastModified", "[doc] " + S3.format("HeadObject")),
    ],
    ("s3", "GetObject"): [("Body", "[doc] " + S3.format("GetObject")), ("ETag", "[doc] " + S3.format("GetObject"))],
    ("s3", "HeadBucket"): [("BucketRegion", "[doc] " + S3.format("HeadBucket"))],
    ("s3", "ListObjectsV2"): [
        ("Name", "[doc] " + S3.format("ListObjectsV2")),
        ("KeyCount", "[doc] " + S3.format("ListObjectsV2")),
        ("IsTruncated", "[doc] " + S3.format("ListObjectsV2")),
        ("Contents[].Key", "[doc] " + S3.format("Object")),
        ("Contents[].ETag", "[doc] " + S3.format("Object")),
        ("Contents[].Size", "[doc] " + S3.format("Object")),
        ("Contents[].LastModified", "[doc] " + S3.format("Object")),
    ],
    ("s3", "DeleteObjects"): [("Deleted[].Key", "[doc] " + S3.format("DeletedObject"))],
    ("s3", "DeleteObject"): [],
}

# DescribeEndpoint once instances serve (InService, Updating, RollingBack): the live variants.
SERVING = [
    ("ProductionVariants", "[obs] present while the endpoint serves (issue 18)"),
    ("ProductionVariants[].VariantName", "[ref] " + SM.format("ProductionVariantSummary")),
    ("ProductionVariants[].DeployedImages", "[obs] (issue 18) " + SM.format("DeployedImage")),
    ("ProductionVariants[].DeployedImages[].SpecifiedImage", "[obs] " + SM.format("DeployedImage")),
    ("ProductionVariants[].DeployedImages[].ResolvedImage", "[obs] " + SM.format("DeployedImage")),
    ("ProductionVariants[].CurrentWeight", "[obs] (issue 18) " + SM.format("ProductionVariantSummary")),
    ("ProductionVariants[].DesiredWeight", "[obs] (issue 18) " + SM.format("ProductionVariantSummary")),
    ("ProductionVariants[].CurrentInstanceCount", "[obs] (issue 18) " + SM.format("ProductionVariantSummary")),
    ("ProductionVariants[].DesiredInstanceCount", "[obs] (issue 18) " + SM.format("ProductionVariantSummary")),
]
DEPLOYING = [
    ("PendingDeploymentSummary.EndpointConfigName", "[ref] " + SM.format("PendingDeploymentSummary")),
    (
        "PendingDeploymentSummary.ProductionVariants[].VariantName",
        "[ref] " + SM.format("PendingProductionVariantSummary"),
    ),
]
FAILED = [
    (
        "FailureReason",
        "[doc] 'If the status of the endpoint is Failed, the reason why it failed' " + SM.format("DescribeEndpoint"),
    )
]

JSON_SERVICES = {"sagemaker", "resourcegroupstaggingapi", "application-autoscaling", "cloudwatch"}
SERVICE_NAMES = {
    "SageMaker": "sagemaker",
    "SageMaker Runtime": "sagemaker-runtime",
    "S3": "s3",
    "STS": "sts",
    "Resource Groups Tagging API": "resourcegroupstaggingapi",
    "Application Auto Scaling": "application-autoscaling",
    "CloudWatch": "cloudwatch",
}


@dataclass
class Captured:
    service: str
    operation: str
    status: int
    raw: bytes
    parsed: dict[str, Any]


def _capture(client: Any, into: list[Captured]) -> Any:
    service = SERVICE_NAMES[client.meta.service_model.service_id]

    def hook(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        streaming = model.has_streaming_output or model.has_event_stream_output
        raw = b"" if streaming else http_response.content
        into.append(Captured(service, model.name, http_response.status_code, raw, parsed))

    client.meta.events.register("after-call", hook)
    return client


def _values(data: Any, path: str) -> Iterator[Any]:
    """Every value at ``path``; a missing member yields a ``_MISSING`` marker."""
    head, _, rest = path.partition(".")
    is_list = head.endswith("[]")
    name = head[:-2] if is_list else head
    value = data.get(name, _MISSING) if isinstance(data, dict) else _MISSING
    if value is _MISSING or value is None:
        yield _MISSING
        return
    items = value if is_list else [value]
    if is_list and not isinstance(value, list):
        yield _MISSING
        return
    for item in items:
        if rest:
            yield from _values(item, rest)
        else:
            yield item


_MISSING = object()


@pytest.fixture(scope="module")
def captured() -> Iterator[list[Captured]]:
    """Drive every served operation once or more; return every successful response."""
    calls: list[Captured] = []
    emu = Emulator().start()
    try:
        no_retry = Config(retries={"total_max_attempts": 1})
        sm = _capture(emu.client("sagemaker", config=no_retry), calls)
        s3 = _capture(emu.client("s3", config=no_retry), calls)
        runtime = _capture(emu.client("sagemaker-runtime", config=no_retry), calls)
        tagging = _capture(emu.client("resourcegroupstaggingapi", config=no_retry), calls)
        sts = _capture(emu.client("sts", config=no_retry), calls)
        aas = _capture(emu.client("application-autoscaling", config=no_retry), calls)
        cw = _capture(emu.client("cloudwatch", config=no_retry), calls)
        tags = [{"Key": "djl-operator.io/owner-uid", "Value": "u"}]

        url = upload(s3, "shapes", "echo/model.tar.gz", echo_artifact())
        s3.head_object(Bucket="shapes", Key="echo/model.tar.gz")
        s3.get_object(Bucket="shapes", Key="echo/model.tar.gz")["Body"].read()
        s3.head_bucket(Bucket="shapes")
        s3.put_object(Bucket="shapes", Key="tmp/a", Body=b"a")
        s3.list_objects_v2(Bucket="shapes", Prefix="echo/")
        s3.delete_objects(Bucket="shapes", Delete={"Objects": [{"Key": "tmp/a"}]})
        s3.delete_object(Bucket="shapes", Key="tmp/none")

        for name in ("echo", "echo-2"):
            sm.create_model(
                ModelName=name,
                PrimaryContainer={"Image": IMAGE, "ModelDataUrl": url},
                ExecutionRoleArn=ROLE,
                Tags=tags,
            )
        sm.describe_model(ModelName="echo")
        sm.list_models(MaxResults=1)
        variant = {"VariantName": "AllTraffic", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}
        sm.create_endpoint_config(
            EndpointConfigName="c-1", ProductionVariants=[{**variant, "ModelName": "echo"}], Tags=tags
        )
        sm.create_endpoint_config(
            EndpointConfigName="c-2", ProductionVariants=[{**variant, "ModelName": "echo-2", "InitialInstanceCount": 2}]
        )
        sm.describe_endpoint_config(EndpointConfigName="c-1")
        sm.list_endpoint_configs(MaxResults=1)
        emu.faults.set(create_delay=0.2)
        sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1", Tags=tags)
        sm.describe_endpoint(EndpointName="ep")  # Creating
        wait_status(sm, "ep", "InService")
        answer = runtime.invoke_endpoint(EndpointName="ep", Body=b"hi", ContentType="text/plain")
        calls[-1].parsed = {**answer, "Body": answer["Body"].read()}
        streamed = runtime.invoke_endpoint_with_response_stream(EndpointName="ep", Body=b"hi", ContentType="text/plain")
        events = list(streamed["Body"])  # botocore's own event-stream parser
        assert b"".join(e["PayloadPart"]["Bytes"] for e in events) == b"text/plain|hi"
        calls[-1].parsed = {**streamed, "Body": events[0]}
        sm.update_endpoint_weights_and_capacities(
            EndpointName="ep", DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}]
        )
        wait_status(sm, "ep", "InService")
        emu.faults.set(update_delay=0.3)
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="c-2", RetainAllVariantProperties=True)
        sm.describe_endpoint(EndpointName="ep")  # Updating
        wait_status(sm, "ep", "InService")
        # Deployment guardrails: a canary baking (VariantStatus), then an alarm rolling it back.
        cw.put_metric_alarm(
            AlarmName="ep-errors", MetricName="Invocation5XXErrors", Namespace="AWS/SageMaker", Statistic="Sum",
            Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
        )  # fmt: skip
        cw.describe_alarms(AlarmNames=["ep-errors"])
        emu.faults.set(update_delay=0)
        routing = {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 60,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
        }
        sm.update_endpoint(
            EndpointName="ep",
            EndpointConfigName="c-1",
            DeploymentConfig={
                "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing},
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "ep-errors"}]},
            },
        )
        baking = sm.describe_endpoint(EndpointName="ep")  # Updating, Baking
        assert baking["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Baking"
        emu.faults.set(rollback_delay=0.3)
        cw.set_alarm_state(AlarmName="ep-errors", StateValue="ALARM", StateReason="5xx")
        assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "RollingBack"
        wait_status(sm, "ep", "InService")
        cw.delete_alarms(AlarmNames=["ep-errors"])
        sm.list_endpoints(MaxResults=1)
        key = {
            "ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/ep/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        }
        aas.register_scalable_target(**key, MinCapacity=1, MaxCapacity=4)
        aas.put_scaling_policy(
            **key,
            PolicyName="invocations",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 100.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            },
        )
        aas.put_scheduled_action(
            **key, ScheduledActionName="mornings", Schedule="cron(0 8 ? * MON-FRI *)",
            ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 4},
        )  # fmt: skip
        # A capacity change is no deployment (no PendingDeploymentSummary, which the DEPLOYING rows expect
        # of every Updating seen): like the UpdateEndpointWeightsAndCapacities above, it is not observed mid-way.
        emu.faults.set(update_delay=0)
        emu.set_invocation_rate("ep", "AllTraffic", 350)  # 3 instances now: scales out to 4
        wait_status(sm, "ep", "InService")
        aas.describe_scalable_targets(ServiceNamespace="sagemaker")
        aas.describe_scaling_policies(ServiceNamespace="sagemaker")
        aas.describe_scheduled_actions(ServiceNamespace="sagemaker")
        aas.describe_scaling_activities(ServiceNamespace="sagemaker")
        aas.delete_scaling_policy(**key, PolicyName="invocations")
        aas.delete_scheduled_action(**key, ScheduledActionName="mornings")
        aas.deregister_scalable_target(**key)
        arn = sm.describe_endpoint(EndpointName="ep")["EndpointArn"]
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "a"}])
        sm.list_tags(ResourceArn=arn)
        sm.delete_tags(ResourceArn=arn, TagKeys=["team"])
        tagging.get_resources(TagFilters=[{"Key": "djl-operator.io/owner-uid", "Values": ["u"]}], ResourcesPerPage=1)
        tagging.get_resources(IncludeComplianceDetails=True)
        sts.get_caller_identity()
        emu.force_endpoint_failed("ep", "broken on purpose")
        sm.describe_endpoint(EndpointName="ep")  # Failed
        sm.delete_endpoint(EndpointName="ep")
        sm.delete_endpoint_config(EndpointConfigName="c-1")
        sm.delete_model(ModelName="echo")
        yield [c for c in calls if c.status < 300]
    finally:
        emu.stop()


def _served_operations() -> set[tuple[str, str]]:
    emu = Emulator()  # not started: only its tables are read
    served = {("sagemaker", op) for op in emu.sagemaker.operations}
    served |= {("resourcegroupstaggingapi", op) for op in emu.tagging.operations}
    served |= {("sts", op) for op in sts_api.OPERATIONS}
    served |= {("application-autoscaling", op) for op in emu.autoscaling.operations}
    served |= {("cloudwatch", op) for op in emu.cloudwatch.operations}
    return served | {("sagemaker-runtime", "InvokeEndpoint"), ("sagemaker-runtime", "InvokeEndpointWithResponseStream")}


def test_every_served_operation_is_covered(captured: list[Captured]) -> None:
    seen = {(c.service, c.operation) for c in captured}
    assert _served_operations() <= seen, f"not exercised: {sorted(_served_operations() - seen)}"
    assert _served_operations() <= set(ALWAYS), f"not in ALWAYS: {sorted(_served_operations() - set(ALWAYS))}"
    assert seen <= set(ALWAYS), f"exercised but not in ALWAYS: {sorted(seen - set(ALWAYS))}"


def test_every_response_matches_the_model(captured: list[Captured]) -> None:
    problems = []
    for c in captured:
        if c.service in JSON_SERVICES:
            found = response_violations(c.operation, json.loads(c.raw or b"{}"), c.service, wire=True)
        else:
            found = response_violations(c.operation, c.parsed, c.service, wire=False)
        problems += [f"{c.service}.{p}" for p in found]
    assert problems == []


def test_always_returned_members_are_present(captured: list[Captured]) -> None:
    missing = []
    for c in captured:
        wanted = list(ALWAYS[(c.service, c.operation)])
        data = json.loads(c.raw) if c.service in JSON_SERVICES else c.parsed
        if c.operation == "DescribeEndpoint":
            status = data["EndpointStatus"]
            wanted += SERVING if status in ("InService", "Updating", "RollingBack") else []
            wanted += DEPLOYING if status in ("Creating", "Updating") else []
            wanted += FAILED if status == "Failed" else []
        for path, source in wanted:
            if any(v is _MISSING for v in _values(data, path)):
                missing.append(f"{c.service}.{c.operation}: {path} ({source})")
    assert missing == []


def test_the_describe_states_were_all_seen(captured: list[Captured]) -> None:
    statuses = {json.loads(c.raw)["EndpointStatus"] for c in captured if c.operation == "DescribeEndpoint"}
    assert {"Creating", "Updating", "RollingBack", "InService", "Failed"} <= statuses


def test_the_autoscaling_describes_had_something_to_check(captured: list[Captured]) -> None:
    # The [ref] rows check list items: an empty Describe would pass them vacuously.
    lists = {
        "DescribeScalableTargets": "ScalableTargets",
        "DescribeScalingPolicies": "ScalingPolicies",
        "DescribeScheduledActions": "ScheduledActions",
        "DescribeScalingActivities": "ScalingActivities",
    }
    sizes = {c.operation: len(json.loads(c.raw)[lists[c.operation]]) for c in captured if c.operation in lists}
    assert sizes == dict.fromkeys(lists, 1)


def test_the_checker_catches_what_aws_would_not_send() -> None:
    # The checks above must be able to fail: a response missing a required member, carrying an
    # undeclared one, or with a timestamp in the wrong wire format is reported.
    bad = {
        "EndpointName": "e",
        "EndpointArn": "a",
        "EndpointStatus": "Sideways",
        "CreationTime": "yesterday",
        "Extra": 1,
    }
    found = response_violations("DescribeEndpoint", bad)
    assert any("LastModifiedTime: required" in p for p in found)
    assert any("Extra: not a member" in p for p in found)
    assert any("CreationTime: expected epoch seconds" in p for p in found)
    assert any("'Sideways' is not one of" in p for p in found)
    assert [p for p in _values({"A": [{"B": 1}, {}]}, "A[].B") if p is _MISSING]
