"""spec.autoscaling end to end: a real kube-apiserver, the emulator's Application Auto Scaling, `djl-operator run`.

The emulator's target tracking follows the invocation rate a test sets (its admin API) on every
Application Auto Scaling request, which the operator makes at each resync (2 s here).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from djl_operator import scaling
from tests.plugins.operator import OPERATOR_ACCESS_KEY, Cluster, endpoint_manifest, wait_for

VARIANT = "AllTraffic"
# Cooldowns of 0 s: each load change acts on the next tick.
SCALING = {
    "minInstances": 1,
    "maxInstances": 3,
    "invocationsPerInstance": 100,
    "scaleInCooldownSeconds": 0,
    "scaleOutCooldownSeconds": 0,
}


def _aas(cluster: Cluster) -> Any:
    return cluster.emulator.client("application-autoscaling")


def _operator_ops(cluster: Cluster, service: str | None = None) -> list[str]:
    return [c.operation for c in cluster.emulator.calls(service=service) if c.principal == OPERATOR_ACCESS_KEY]


def _ready_with_autoscaling(cluster: Cluster, name: str) -> dict[str, Any]:
    """Ready, and spec.autoscaling applied for this generation."""

    def applied() -> dict[str, Any] | None:
        body = cluster.get(name) or {}
        status = body.get("status") or {}
        current = status.get("observedGeneration") == body.get("metadata", {}).get("generation")
        return status if current and (status.get("autoscaling") or {}).get("applied") else None

    cluster.wait_ready(name)
    return wait_for(applied, timeout=30, what=f"{name} autoscaling applied")


def _instances(cluster: Cluster, name: str, current: int, desired: int, timeout: float = 30) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        status = cluster.status(name)
        seen = status.get("instances") or {}
        return status if (seen.get("current"), seen.get("desired")) == (current, desired) else None

    return wait_for(settled, timeout=timeout, what=f"{name} at {current}/{desired} instances")


def _targets(cluster: Cluster) -> list[tuple[str, int, int]]:
    found = _aas(cluster).describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    return [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in found]


def _column(cluster: Cluster, name: str, header: str) -> str:
    rows = cluster.kubectl.run("get", "djlendpoint", name, "-n", cluster.namespace).stdout.splitlines()
    return rows[1].split()[rows[0].split().index(header)]


def test_one_target_and_one_policy_and_load_scales_out_and_in_within_bounds(cluster: Cluster) -> None:
    cluster.apply(endpoint_manifest("auto", autoscaling=SCALING))
    status = _ready_with_autoscaling(cluster, "auto")
    endpoint = status["endpointName"]
    uid = cluster.get("auto")["metadata"]["uid"]  # type: ignore[index]
    assert _targets(cluster) == [(f"endpoint/{endpoint}/variant/{VARIANT}", 1, 3)]
    policies = _aas(cluster).describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert [(p["PolicyName"], p["PolicyType"]) for p in policies] == [
        (scaling.policy_name(uid), "TargetTrackingScaling")
    ]
    config = policies[0]["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 100.0
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert status["instances"] == {
        "current": 1,
        "desired": 1,
        "summary": "1/1",
        "selector": f"serving.djl-operator.io/endpoint={endpoint}",
    }
    assert status["autoscaling"]["minInstances"] == 1 and status["autoscaling"]["maxInstances"] == 3
    writes = [op for op in _operator_ops(cluster, "application-autoscaling") if not op.startswith("Describe")]
    assert writes == ["RegisterScalableTarget", "PutScalingPolicy"]

    # Load for 10 instances; the bounds allow 3. Each step keeps the endpoint Updating for 3 s: it stays Ready.
    cluster.emulator.faults.set(update_delay=3.0)
    cluster.emulator.set_invocation_rate(endpoint, VARIANT, 1000)

    def scaling_out() -> dict[str, Any] | None:
        status = cluster.status("auto")
        return status if status.get("endpointStatus") == "Updating" else None

    during = wait_for(scaling_out, timeout=30, what="the scale-out seen while Updating")
    conditions = {c["type"]: (c["status"], c["reason"]) for c in during["conditions"]}
    assert conditions["Ready"] == ("True", "EndpointInService")
    assert conditions["Reconciling"][0] == "False"
    assert during["phase"] == "InService" and during["instances"]["desired"] == 3
    status = _instances(cluster, "auto", 3, 3)
    assert _column(cluster, "auto", "INSTANCES") == "3/3"
    assert status["autoscaling"]["lastActivity"]["description"] == "Setting desired instance count to 3."
    cluster.emulator.faults.clear()

    # Little load: back to the minimum.
    cluster.emulator.set_invocation_rate(endpoint, VARIANT, 50)
    _instances(cluster, "auto", 1, 1)
    assert _column(cluster, "auto", "INSTANCES") == "1/1"
    activities = _aas(cluster).describe_scaling_activities(ServiceNamespace="sagemaker")["ScalingActivities"]
    assert [a["Description"] for a in activities] == [
        "Setting desired instance count to 1.",
        "Setting desired instance count to 3.",
    ]
    reasons = [e["reason"] for e in cluster.wait_events("auto", "ScaledOut", "ScaledIn", "AutoscalingConfigured")]
    assert reasons.count("ScaledOut") == 1 and reasons.count("ScaledIn") == 1
    assert reasons.count("AutoscalingConfigured") == 1


def test_an_update_keeps_the_scaled_count_and_a_count_change_resets_it(cluster: Cluster) -> None:
    keep = {**SCALING, "maxInstances": 4, "disableScaleIn": True}
    cluster.apply(endpoint_manifest("keep", autoscaling=keep))
    endpoint = _ready_with_autoscaling(cluster, "keep")["endpointName"]
    cluster.emulator.set_invocation_rate(endpoint, VARIANT, 300)
    _instances(cluster, "keep", 3, 3)
    cluster.emulator.set_invocation_rate(endpoint, VARIANT, 0)  # scale-in is disabled: the count stays

    # A new model, the same spec.instance.count: the blue/green update keeps the 3 instances.
    before = cluster.status("keep")["endpointConfigName"]
    cluster.apply(endpoint_manifest("keep", autoscaling=keep, model__properties={"option.max_rolling_batch_size": "8"}))
    status = cluster.wait_ready("keep")
    assert status["endpointConfigName"] != before
    assert (status["instances"]["current"], status["instances"]["desired"]) == (3, 3)
    live = cluster.sagemaker.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert (live["CurrentInstanceCount"], live["DesiredInstanceCount"]) == (3, 3)

    # spec.instance.count changes: the update resets the count to it.
    cluster.apply(endpoint_manifest("keep", autoscaling=keep, instance__count=2,
                                    model__properties={"option.max_rolling_batch_size": "8"}))  # fmt: skip
    cluster.wait_ready("keep")
    _instances(cluster, "keep", 2, 2)
    assert _targets(cluster) == [(f"endpoint/{endpoint}/variant/{VARIANT}", 1, 4)]
    aas_writes = [op for op in _operator_ops(cluster, "application-autoscaling") if not op.startswith("Describe")]
    assert aas_writes == ["RegisterScalableTarget", "PutScalingPolicy"]  # the target lived through both updates


def test_schedules_are_applied_and_removing_autoscaling_deregisters(cluster: Cluster) -> None:
    cluster.apply(endpoint_manifest("sched", autoscaling=SCALING))
    endpoint = _ready_with_autoscaling(cluster, "sched")["endpointName"]
    uid = cluster.get("sched")["metadata"]["uid"]  # type: ignore[index]
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%S")
    schedules = [
        {"name": "burst", "schedule": f"at({at})", "minInstances": 2, "maxInstances": 2},
        {"name": "nightly", "schedule": "cron(0 22 ? * MON-FRI *)", "maxInstances": 1, "timezone": "Europe/Berlin"},
    ]
    cluster.apply(endpoint_manifest("sched", autoscaling={**SCALING, "schedules": schedules}))
    _ready_with_autoscaling(cluster, "sched")
    actions = _aas(cluster).describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]
    assert sorted((a["ScheduledActionName"], a["Schedule"], a.get("Timezone")) for a in actions) == [
        (scaling.action_name(uid, "burst"), f"at({at})", None),
        (scaling.action_name(uid, "nightly"), "cron(0 22 ? * MON-FRI *)", "Europe/Berlin"),
    ]

    # The at() time comes: the target's bounds become 2..2 and the endpoint scales out to 2.
    status = _instances(cluster, "sched", 2, 2, timeout=40)
    wait_for(lambda: _targets(cluster) == [(f"endpoint/{endpoint}/variant/{VARIANT}", 2, 2)], what="bounds 2..2")
    wait_for(lambda: cluster.status("sched")["autoscaling"]["minInstances"] == 2, what="status shows bounds 2..2")
    # Bounds a schedule of the spec set are not drift: two more looks, no registration.
    registrations = _operator_ops(cluster, "application-autoscaling").count("RegisterScalableTarget")
    looks = _operator_ops(cluster, "application-autoscaling").count("DescribeScalableTargets")
    wait_for(
        lambda: _operator_ops(cluster, "application-autoscaling").count("DescribeScalableTargets") >= looks + 2,
        what="two more resyncs",
    )
    assert _operator_ops(cluster, "application-autoscaling").count("RegisterScalableTarget") == registrations
    assert status["autoscaling"]["lastActivity"]["description"] == "Setting desired instance count to 2."

    # spec.autoscaling removed: the target (with its policy and scheduled actions) is deregistered.
    cluster.apply(endpoint_manifest("sched"))
    wait_for(lambda: not cluster.status("sched").get("autoscaling"), what="status.autoscaling cleared")
    assert _targets(cluster) == []
    assert _aas(cluster).describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"] == []
    assert "AutoscalingRemoved" in [e["reason"] for e in cluster.wait_events("sched", "AutoscalingRemoved")]


def test_out_of_band_changes_are_repaired_at_the_next_resync_and_delete_deregisters_first(cluster: Cluster) -> None:
    cluster.apply(endpoint_manifest("drift", autoscaling=SCALING))
    endpoint = _ready_with_autoscaling(cluster, "drift")["endpointName"]
    uid = cluster.get("drift")["metadata"]["uid"]  # type: ignore[index]
    rid = f"endpoint/{endpoint}/variant/{VARIANT}"
    mark = len(_operator_ops(cluster))
    _aas(cluster).register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=rid,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=2,
        MaxCapacity=5,
    )
    wait_for(lambda: _targets(cluster) == [(rid, 1, 3)], what="bounds restored to 1..3")
    # Within one resync: the first look after the change registers the spec's bounds again.
    after = [op for op in _operator_ops(cluster)[mark:] if op in ("DescribeScalableTargets", "RegisterScalableTarget")]
    assert after[:2] == ["DescribeScalableTargets", "RegisterScalableTarget"], after
    _aas(cluster).put_scaling_policy(
        ServiceNamespace="sagemaker",
        ResourceId=rid,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyName=scaling.policy_name(uid),
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 5.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )

    def policy_target() -> float:
        policies = _aas(cluster).describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        return float(policies[0]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])

    wait_for(lambda: policy_target() == 100.0, what="the policy's target restored")
    warnings = [
        e for e in cluster.wait_events("drift", "AutoscalingDriftRepaired") if e["reason"] == "AutoscalingDriftRepaired"
    ]
    assert warnings and all(e["type"] == "Warning" for e in warnings)

    mark = len(cluster.emulator.calls())
    cluster.delete("drift")
    ops = [c.operation for c in cluster.emulator.calls()[mark:] if c.principal == OPERATOR_ACCESS_KEY]
    assert "DeregisterScalableTarget" in ops and "DeleteEndpoint" in ops
    assert ops.index("DeregisterScalableTarget") < ops.index("DeleteEndpoint"), ops
    # Nothing is left billing.
    assert _targets(cluster) == []
    assert _aas(cluster).describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert cluster.endpoint_names() == [] and cluster.model_names() == [] and cluster.config_names() == []
    assert cluster.artifact_keys() == []


def test_kubectl_scale_sets_the_count_within_the_autoscaling_bounds(cluster: Cluster) -> None:
    # The concurrency-based target this time (SageMaker's high-resolution concurrent requests metric).
    concurrency = {**SCALING, "maxInstances": 4, "invocationsPerInstance": None, "concurrentRequestsPerModel": 4}
    cluster.apply(endpoint_manifest("scale", autoscaling={k: v for k, v in concurrency.items() if v is not None}))
    endpoint = _ready_with_autoscaling(cluster, "scale")["endpointName"]
    (policy,) = _aas(cluster).describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == scaling.CONCURRENCY
    assert config["TargetValue"] == 4.0
    ns = cluster.namespace
    cluster.kubectl.run("scale", "djlendpoint/scale", "--replicas=3", "-n", ns)
    assert cluster.get("scale")["spec"]["instance"]["count"] == 3  # type: ignore[index]
    cluster.wait_ready("scale")
    _instances(cluster, "scale", 3, 3)
    scale = json.loads(cluster.kubectl.run("get", "djlendpoint", "scale", "--subresource=scale", "-n", ns,
                                           "-o", "json").stdout)  # fmt: skip
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == f"serving.djl-operator.io/endpoint={endpoint}"
    live = cluster.sagemaker.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert (live["CurrentInstanceCount"], live["DesiredInstanceCount"]) == (3, 3)

    # Outside the autoscaling bounds: refused by the API server, nothing changes.
    refused = cluster.kubectl.run("scale", "djlendpoint/scale", "--replicas=5", "-n", ns, check=False)
    assert refused.returncode != 0
    assert "instance.count must lie within autoscaling.minInstances and autoscaling.maxInstances" in refused.stderr
    assert cluster.get("scale")["spec"]["instance"]["count"] == 3  # type: ignore[index]
    # The scalable target is untouched by a count change: registered once, bounds as specified.
    assert _targets(cluster) == [(f"endpoint/{endpoint}/variant/{VARIANT}", 1, 4)]
    assert _operator_ops(cluster, "application-autoscaling").count("RegisterScalableTarget") == 1


def test_an_instance_type_change_deregisters_first_and_registers_again(cluster: Cluster) -> None:
    """SageMaker refuses to change the instance type of a scalable variant (the emulator too): the update
    deregisters the target first, and the next look after InService registers it again."""
    cluster.apply(endpoint_manifest("retype", autoscaling=SCALING))
    endpoint = _ready_with_autoscaling(cluster, "retype")["endpointName"]
    rid = f"endpoint/{endpoint}/variant/{VARIANT}"
    mark = len(cluster.emulator.calls())
    cluster.apply(endpoint_manifest("retype", autoscaling=SCALING, instance__type="ml.g5.2xlarge"))
    status = cluster.wait_ready("retype")
    config = cluster.sagemaker.describe_endpoint_config(EndpointConfigName=status["endpointConfigName"])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.2xlarge"
    wait_for(lambda: _targets(cluster) == [(rid, 1, 3)], what="the target registered again")
    policies = _aas(cluster).describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert len(policies) == 1
    calls = [c for c in cluster.emulator.calls()[mark:] if c.principal == OPERATOR_ACCESS_KEY]
    refused = [(c.operation, c.error_code) for c in calls if c.error_code and c.operation != "CreateModel"]
    assert not refused, refused  # (the model is the same one: its CreateModel answers "already exists")
    ops = [c.operation for c in calls]
    assert ops.index("DeregisterScalableTarget") < ops.index("UpdateEndpoint") < ops.index("RegisterScalableTarget")


def test_removing_autoscaling_after_a_half_applied_spec_still_deregisters(cluster: Cluster) -> None:
    """RegisterScalableTarget went through, PutScalingPolicy was refused: the status never said "applied".
    Removing spec.autoscaling then must still deregister what was registered (nothing keeps scaling)."""
    cluster.emulator.faults.deny("PutScalingPolicy")
    cluster.apply(endpoint_manifest("half", autoscaling=SCALING))
    cluster.wait_condition("half", "Reconciling", "AccessDenied")
    endpoint = cluster.status("half")["endpointName"]
    rid = f"endpoint/{endpoint}/variant/{VARIANT}"
    assert _targets(cluster) == [(rid, 1, 3)]

    cluster.apply(endpoint_manifest("half"))
    wait_for(lambda: _targets(cluster) == [], timeout=20, what="the half-applied target deregistered")
    cluster.emulator.faults.clear()
    status = cluster.wait_ready("half")
    assert not status.get("autoscaling")
    assert "AutoscalingRemoved" in [e["reason"] for e in cluster.wait_events("half", "AutoscalingRemoved")]


def test_a_rolled_back_instance_type_change_puts_the_target_back_on_what_serves(cluster: Cluster) -> None:
    """The type change deregistered the target first; the update rolls back, the old config serves
    on (Stalled UpdateRolledBack): the spec's autoscaling is registered again on it."""
    cluster.apply(endpoint_manifest("rback", autoscaling=SCALING))
    endpoint = _ready_with_autoscaling(cluster, "rback")["endpointName"]
    rid = f"endpoint/{endpoint}/variant/{VARIANT}"
    cluster.emulator.faults.fail_model_start(image="*")  # the new fleet never passes /ping
    cluster.apply(endpoint_manifest("rback", autoscaling=SCALING, instance__type="ml.g5.2xlarge"))
    cluster.wait_condition("rback", "Stalled", "UpdateRolledBack", timeout=90)
    wait_for(lambda: _targets(cluster) == [(rid, 1, 3)], timeout=20, what="the target registered again")
    (policy,) = _aas(cluster).describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert policy["ResourceId"] == rid
    live = cluster.sagemaker.describe_endpoint(EndpointName=endpoint)
    config = cluster.sagemaker.describe_endpoint_config(EndpointConfigName=live["EndpointConfigName"])
    assert config["ProductionVariants"][0]["InstanceType"] != "ml.g5.2xlarge"  # the old config serves
