"""Tenancy: two teams in one cluster, each bound to the shipped roles, and one operator serving both.

Every attack and edit here runs for real against the API server and the emulator. The victim's
AWS resources see nothing but reads, every forgery ends in a clear reason, and after any
sequence of edits a delete leaves no owned resource in any region or bucket ever used.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from djl_operator import naming, scaling
from djl_operator.api import DjlEndpointResource
from djl_operator.desired import desired_deployment
from djl_operator_kit.controlplane import ControlPlane
from tests.plugins.controlplane import Kubectl
from tests.plugins.operator import (
    BUCKET,
    MANIFESTS,
    OPERATOR_ACCESS_KEY,
    Cluster,
    clean_up,
    endpoint_manifest,
    wait_for,
)

SECOND_BUCKET = "djl-test-artifacts-two"
REGIONS = ("us-east-1", "us-west-2")
WRITES = {"CreateEndpoint", "UpdateEndpoint", "DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel", "AddTags"}


@dataclass
class Tenancy:
    """Two namespaces (the second is the first's name plus ``-a``), a tenant in each, one operator."""

    victim: Cluster
    attacker: Cluster
    victim_tenant: Kubectl
    attacker_tenant: Kubectl
    admin: Kubectl

    @property
    def emulator(self) -> Any:
        return self.victim.emulator

    def writes_to(self, *names: str) -> list[tuple[str, str | None]]:
        """Every write call whose target names one of ``names`` (an endpoint, model or config)."""
        wanted = {n.lower() for n in names}
        return [
            (c.operation, c.resource)
            for c in self.emulator.calls(service="sagemaker")
            if c.operation in WRITES and c.resource and c.resource.rsplit("/", 1)[-1].lower() in wanted
        ]


def _tenant(control_plane: ControlPlane, admin: Kubectl, namespace: str) -> Kubectl:
    """A team member: a ServiceAccount bound to djlendpoint-editor in their namespace only."""
    admin.run("create", "serviceaccount", "tenant", "-n", namespace)
    admin.run(
        "create", "rolebinding", "tenant-editor", "-n", namespace,
        "--clusterrole=djlendpoint-editor", f"--serviceaccount={namespace}:tenant",
    )  # fmt: skip
    return Kubectl(control_plane, control_plane.service_account_kubeconfig(namespace, "tenant"))


@pytest.fixture(scope="module")
def tenant_roles(kubectl: Kubectl) -> None:
    """The shipped ClusterRoles the tenants are bound to (cluster-wide: once is enough)."""
    kubectl.run("apply", "-f", str(MANIFESTS / "tenant-roles.yaml"))


@pytest.fixture
def tenancy(control_plane: ControlPlane, kubectl: Kubectl, cluster: Cluster, tenant_roles: None) -> Iterator[Tenancy]:
    """The victim's namespace is this test's own, the attacker's the same name plus ``-a``; the
    module's operator (tests/plugins/operator.py, serving every ``e-*`` namespace) serves both."""
    victim_ns = cluster.namespace
    attacker_ns = f"{victim_ns}-a"
    control_plane.create_namespace(attacker_ns)
    cluster.s3.create_bucket(Bucket=SECOND_BUCKET)  # BUCKET is there already
    attacker = Cluster(kubectl, attacker_ns, cluster.emulator, cluster.operator, cluster.hub)
    try:
        yield Tenancy(
            victim=cluster,
            attacker=attacker,
            victim_tenant=_tenant(control_plane, kubectl, victim_ns),
            attacker_tenant=_tenant(control_plane, kubectl, attacker_ns),
            admin=kubectl,
        )
    finally:
        # The victim's namespace is cleaned up by the cluster fixture; the operator stays up.
        clean_up(kubectl, attacker_ns, cluster.operator, stop=False)
        control_plane.delete_namespace(attacker_ns)


def _apply_as(tenant: Kubectl, namespace: str, manifest: dict[str, Any], check: bool = True) -> Any:
    return tenant.run("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=check)


def _uid(cluster: Cluster, name: str) -> str:
    body = cluster.get(name)
    assert body is not None
    return str(body["metadata"]["uid"])


def _owned_everywhere(t: Tenancy, uid: str) -> dict[str, list[str]]:
    """Everything carrying ``uid``'s owner tag in every region, and every object in its folders in every bucket."""
    found: dict[str, list[str]] = {}
    for region in REGIONS:
        tagging = t.emulator.client("resourcegroupstaggingapi", region_name=region)
        pages = tagging.get_resources(TagFilters=[{"Key": naming.TAG_OWNER_UID, "Values": [uid]}])
        found[f"tagged in {region}"] = [m["ResourceARN"] for m in pages["ResourceTagMappingList"]]
        if region != t.emulator.client("sagemaker").meta.region_name:
            continue  # the emulator's SageMaker lives in one region; the Tagging API answers for the others
        sagemaker = t.emulator.client("sagemaker", region_name=region)
        owner = naming.owner_id(uid)
        found[f"models in {region}"] = [
            m["ModelName"] for m in sagemaker.list_models(MaxResults=100)["Models"] if owner in m["ModelName"]
        ]
        found[f"configs in {region}"] = [
            c["EndpointConfigName"]
            for c in sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]
            if owner in c["EndpointConfigName"]
        ]
    # Application Auto Scaling: the policies and scheduled actions named with the owner id (they live
    # only as long as their scalable target).
    autoscaling = t.emulator.client("application-autoscaling")
    prefix = scaling.name_prefix(uid)
    found["autoscaling"] = [
        p["PolicyName"]
        for p in autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        if p["PolicyName"].startswith(prefix)
    ] + [
        a["ScheduledActionName"]
        for a in autoscaling.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]
        if a["ScheduledActionName"].startswith(prefix)
    ]
    s3 = t.emulator.client("s3")
    for bucket in (BUCKET, SECOND_BUCKET):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        found[f"objects in {bucket}"] = [k for k in keys if f"/{uid}/" in k]
    return {where: items for where, items in found.items() if items}


def _resyncs(cluster: Cluster, name: str, count: int = 2) -> None:
    """Wait until the operator has written status ``count`` more times (each resync writes lastSyncTime)."""
    seen = {cluster.status(name).get("lastSyncTime")}

    def advanced() -> bool:
        seen.add(cluster.status(name).get("lastSyncTime"))
        return len(seen) > count

    wait_for(advanced, timeout=30, interval=0.5, what=f"{count} resyncs of {name}")


def test_tenants_act_only_in_their_namespace_and_never_on_status(tenancy: Tenancy) -> None:
    t = tenancy
    _apply_as(t.attacker_tenant, t.attacker.namespace, endpoint_manifest("mine"))
    t.attacker.wait_ready("mine")
    victim_ns = t.victim.namespace
    denied = [
        t.attacker_tenant.run("get", "djlendpoints", "-n", victim_ns, check=False),
        _apply_as(t.attacker_tenant, victim_ns, endpoint_manifest("intruder"), check=False),
        t.attacker_tenant.run(
            "patch", "djlendpoint", "mine", "-n", t.attacker.namespace, "--subresource=status", "--type=merge",
            "-p", '{"status":{"endpointArn":"arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"}}', check=False,
        ),
    ]  # fmt: skip
    for result in denied:
        assert result.returncode != 0 and "forbidden" in result.stderr.lower(), result.stderr
    # kubectl scale in their own namespace is theirs (the editor role grants djlendpoints/scale).
    t.attacker_tenant.run("scale", "djlendpoint/mine", "--replicas=2", "-n", t.attacker.namespace)
    assert t.attacker.get("mine")["spec"]["instance"]["count"] == 2  # type: ignore[index]
    viewer = t.admin.run("auth", "can-i", "patch", "djlendpoints/status", "--as=system:serviceaccount:x:y",
                         "-n", victim_ns, check=False)  # fmt: skip
    assert viewer.stdout.strip() == "no"


def test_a_forged_status_arn_never_reaches_the_victim(tenancy: Tenancy) -> None:
    """Someone who may write status (not a tenant: the roles do not allow it) points it at the victim."""
    t = tenancy
    _apply_as(t.victim_tenant, t.victim.namespace, endpoint_manifest("prod"))
    victim = t.victim.wait_ready("prod")
    _apply_as(t.attacker_tenant, t.attacker.namespace, endpoint_manifest("forger", instance__count=2))
    t.attacker.wait_ready("forger")
    t.emulator.reset_calls()

    forged = {"status": {"endpointArn": victim["endpointArn"], "endpointName": victim["endpointName"]}}
    t.admin.run(
        "patch", "djlendpoint", "forger", "-n", t.attacker.namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps(forged),
    )  # fmt: skip
    _resyncs(t.attacker, "forger")
    # A spec change makes the forger act (an update), and then it is deleted.
    _apply_as(t.attacker_tenant, t.attacker.namespace, endpoint_manifest("forger", instance__count=3))
    t.attacker.wait_ready("forger")
    t.attacker.delete("forger")

    victim_names = (victim["endpointName"], victim["endpointConfigName"], victim["modelName"])
    assert t.writes_to(*victim_names) == []
    endpoint = t.victim.endpoint(victim["endpointName"])
    assert endpoint is not None and endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == victim["endpointConfigName"]
    assert t.victim.wait_ready("prod")["endpointConfigName"] == victim["endpointConfigName"]


def test_the_same_name_and_spec_in_two_namespaces_share_nothing(tenancy: Tenancy) -> None:
    """staging and prod with one manifest: two models, two configs, two artifacts, two endpoints."""
    t = tenancy
    _apply_as(t.victim_tenant, t.victim.namespace, endpoint_manifest("demo"))
    _apply_as(t.attacker_tenant, t.attacker.namespace, endpoint_manifest("demo"))
    prod, staging = t.victim.wait_ready("demo"), t.attacker.wait_ready("demo")
    for field in ("endpointName", "endpointConfigName", "modelName"):
        assert prod[field] != staging[field], field
    assert prod["artifact"]["uri"] != staging["artifact"]["uri"]
    assert prod["artifact"]["sha256"] == staging["artifact"]["sha256"]  # the same content, stored twice

    t.emulator.reset_calls()
    t.attacker.delete("demo")
    assert t.writes_to(prod["endpointName"], prod["endpointConfigName"], prod["modelName"]) == []
    assert prod["modelName"] in t.victim.model_names()
    assert prod["endpointConfigName"] in t.victim.config_names()
    _resyncs(t.victim, "demo")
    assert t.victim.wait_ready("demo")["endpointConfigName"] == prod["endpointConfigName"]
    key = prod["artifact"]["uri"].split(f"{BUCKET}/", 1)[1]
    assert key in t.victim.artifact_keys()


def test_derived_endpoint_names_never_collide(tenancy: Tenancy) -> None:
    """``<ns>``/``a-x`` and ``<ns>-a``/``x`` used to derive the same endpoint name; the first one won it."""
    t = tenancy
    _apply_as(t.victim_tenant, t.victim.namespace, endpoint_manifest("a-x"))
    first = t.victim.wait_ready("a-x")
    _apply_as(t.attacker_tenant, t.attacker.namespace, endpoint_manifest("x"))
    second = t.attacker.wait_ready("x")
    assert first["endpointName"] != second["endpointName"]
    for cluster, name, status in ((t.victim, "a-x", first), (t.attacker, "x", second)):
        tags = t.emulator.client("sagemaker").list_tags(ResourceArn=status["endpointArn"])["Tags"]
        assert naming.is_owned_by(tags, _uid(cluster, name))


def test_edits_then_delete_leave_nothing_anywhere(tenancy: Tenancy) -> None:
    """Rename the endpoint (no downtime), move the artifacts to another bucket and prefix, try another region."""
    t, c, ns = tenancy, tenancy.victim, tenancy.victim.namespace
    _apply_as(t.victim_tenant, ns, endpoint_manifest("moving"))
    first = c.wait_ready("moving")
    uid = _uid(c, "moving")

    # 1. Rename: the new endpoint comes up, then the old one goes; something serves all along.
    t.emulator.faults.set(create_delay=1.0, delete_delay=1.0)
    serving: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            names = ("moving-v2", first["endpointName"])
            serving.append(any((c.endpoint(n) or {}).get("EndpointStatus") == "InService" for n in names))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        _apply_as(t.victim_tenant, ns, endpoint_manifest("moving", endpointName="moving-v2"))
        renamed = c.wait_ready("moving")
        wait_for(lambda: c.endpoint(first["endpointName"]) is None, timeout=30, what="the old endpoint deleted")
    finally:
        stop.set()
        watcher.join()
    assert renamed["endpointName"] == "moving-v2"
    assert serving and all(serving), "an endpoint was InService at every look during the rename"
    assert not [e for e in c.events("moving") if e["reason"] == "EndpointRecreated"], "a rename is not a deletion"
    t.emulator.faults.set(create_delay=0.0, delete_delay=0.0)

    # 2. Another bucket, then another prefix: the model follows its artifact, the old ones go.
    _apply_as(t.victim_tenant, ns, endpoint_manifest("moving", endpointName="moving-v2",
                                                      aws__artifactBucket=SECOND_BUCKET))  # fmt: skip
    moved = c.wait_ready("moving")
    assert moved["artifact"]["uri"].startswith(f"s3://{SECOND_BUCKET}/")
    assert moved["modelName"] != renamed["modelName"]
    _apply_as(t.victim_tenant, ns, endpoint_manifest("moving", endpointName="moving-v2",
                                                      aws__artifactBucket=SECOND_BUCKET,
                                                      aws__artifactPrefix="elsewhere"))  # fmt: skip
    prefixed = c.wait_ready("moving")
    assert prefixed["artifact"]["uri"].startswith(f"s3://{SECOND_BUCKET}/elsewhere/{ns}/moving/{uid}/")
    wait_for(lambda: [k for k in c.artifact_keys() if f"/{uid}/" in k] == [], timeout=30,
             what="the first bucket emptied of this resource's artifacts")  # fmt: skip

    # 3. Another region is refused by the API server, naming the field; nothing changes.
    refused = _apply_as(t.victim_tenant, ns, endpoint_manifest("moving", endpointName="moving-v2",
                                                                aws__artifactBucket=SECOND_BUCKET,
                                                                aws__artifactPrefix="elsewhere",
                                                                aws__region="us-west-2"), check=False)  # fmt: skip
    assert refused.returncode != 0 and "spec.aws.region" in refused.stderr and "immutable" in refused.stderr

    # What is owned now is exactly what serves.
    left = _owned_everywhere(t, uid)
    assert left["models in us-east-1"] == [prefixed["modelName"]]
    assert left["configs in us-east-1"] == [prefixed["endpointConfigName"]]
    assert list(left) == ["tagged in us-east-1", "models in us-east-1", "configs in us-east-1",
                          f"objects in {SECOND_BUCKET}"], left  # fmt: skip

    c.delete("moving")
    assert _owned_everywhere(t, uid) == {}


def test_delete_after_the_spec_stops_parsing_leaves_nothing(tenancy: Tenancy) -> None:
    """An older, looser schema let a field in that this operator refuses: clean-up works from the uid alone."""
    t, c, ns = tenancy, tenancy.victim, tenancy.victim.namespace
    autoscaling = {"maxInstances": 2, "invocationsPerInstance": 100,
                   "schedules": [{"name": "night", "schedule": "cron(0 22 ? * * *)", "maxInstances": 1}]}  # fmt: skip
    _apply_as(t.victim_tenant, ns, endpoint_manifest("legacy", endpointName="legacy-ep", autoscaling=autoscaling))
    c.wait_ready("legacy")
    uid = _uid(c, "legacy")
    wait_for(lambda: len(_owned_everywhere(t, uid).get("autoscaling", [])) == 2, what="the policy and the schedule")
    loosen = [{
        "op": "add",
        "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/x-kubernetes-preserve-unknown-fields",
        "value": True,
    }]  # fmt: skip
    crd = "djlendpoints.serving.djl-operator.io"
    t.admin.run("patch", "crd", crd, "--type=json", "-p", json.dumps(loosen))
    try:
        manifest = endpoint_manifest("legacy", endpointName="legacy-ep", autoscaling=autoscaling)
        manifest["spec"]["legacyOption"] = "from an older schema"

        def stored() -> bool:
            # The API server's handlers pick the new schema up one by one: one may still prune the field.
            t.admin.apply(manifest, "-n", ns, check=False)
            return "legacyOption" in ((c.get("legacy") or {}).get("spec") or {})

        wait_for(stored, timeout=30, interval=1.0, what="the field stored under the loosened schema")
        stalled = c.wait_condition("legacy", "Stalled", "InvalidSpec")
        assert "legacyOption" in stalled["message"]
        mark = len(t.emulator.calls())
        c.delete("legacy")
        # The scalable target went first, found from the uid alone (the owned endpoint's tag).
        ops = [call.operation for call in t.emulator.calls()[mark:] if call.principal == OPERATOR_ACCESS_KEY]
        assert ops.index("DeregisterScalableTarget") < ops.index("DeleteEndpoint"), ops
    finally:
        t.admin.run("patch", "crd", crd, "--type=json", "-p", json.dumps([{"op": "remove", "path": loosen[0]["path"]}]))
        # A schema change re-creates the API server's storage for the kind (429 "storage is
        # (re)initializing" meanwhile): leave it serving for the tests that follow on this worker.
        wait_for(lambda: t.admin.run("get", "djlendpoints", "-A", check=False).returncode == 0, timeout=30,
                 what="djlendpoints served again")  # fmt: skip
    assert c.endpoint("legacy-ep") is None
    assert _owned_everywhere(t, uid) == {}


def test_a_foreign_model_with_our_name_stalls_and_is_left_alone(tenancy: Tenancy) -> None:
    t, c, ns = tenancy, tenancy.victim, tenancy.victim.namespace
    t.emulator.faults.deny("PutObject")  # holds the operator before its CreateModel
    _apply_as(t.victim_tenant, ns, endpoint_manifest("clash"))
    c.wait_condition("clash", "Reconciling", "AccessDenied")
    body = c.get("clash")
    assert body is not None
    model_name = desired_deployment(DjlEndpointResource.from_body(body)).target.model_name
    sagemaker = t.emulator.client("sagemaker")
    sagemaker.create_model(  # someone else's, without our tags
        ModelName=model_name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/Other",
        PrimaryContainer={"Image": "example.com/other:1"},
    )
    t.emulator.faults.clear()

    stalled = c.wait_condition("clash", "Stalled", "ResourceNameConflict")
    assert model_name in stalled["message"]
    assert "CreateEndpointConfig" not in [x.operation for x in t.emulator.calls(service="sagemaker")]
    c.delete("clash")
    assert t.writes_to(model_name) == []
    assert model_name in c.model_names()


def test_a_denied_delete_says_how_to_release_the_resource(tenancy: Tenancy) -> None:
    t, c, ns = tenancy, tenancy.victim, tenancy.victim.namespace
    _apply_as(t.victim_tenant, ns, endpoint_manifest("stuck"))
    status = c.wait_ready("stuck")
    t.emulator.faults.deny("DeleteEndpoint")
    c.delete("stuck", wait=False)
    ready = c.wait_condition("stuck", "Reconciling", "AccessDenied")
    assert "sagemaker:DeleteEndpoint" in ready["message"] and "deletionPolicy to Retain" in ready["message"]
    warnings = [
        e for e in c.wait_events("stuck", "AccessDenied") if e["type"] == "Warning" and e["reason"] == "AccessDenied"
    ]
    assert warnings and "Retain" in warnings[0]["message"]

    # The way out it names, taken by the tenant: the resource goes, the endpoint stays.
    t.victim_tenant.run("patch", "djlendpoint", "stuck", "-n", ns, "--type=merge",
                        "-p", '{"spec":{"deletionPolicy":"Retain"}}')  # fmt: skip
    wait_for(lambda: c.get("stuck") is None, timeout=30, what="the finalizer released")
    assert c.endpoint(status["endpointName"]) is not None


def test_claiming_the_victims_endpoint_name_stalls_and_deletes_nothing(tenancy: Tenancy) -> None:
    """spec.endpointName is free text: naming someone else's endpoint gets a conflict, never the endpoint."""
    t = tenancy
    _apply_as(t.victim_tenant, t.victim.namespace, endpoint_manifest("prod"))
    victim = t.victim.wait_ready("prod")
    t.emulator.reset_calls()
    _apply_as(t.attacker_tenant, t.attacker.namespace, endpoint_manifest("claim", endpointName=victim["endpointName"]))
    stalled = t.attacker.wait_condition("claim", "Stalled", "EndpointNameConflict")
    assert victim["endpointName"] in stalled["message"]
    assert t.attacker.status("claim").get("endpointArn") is None, "status never reports someone else's endpoint"
    t.attacker.delete("claim")
    assert t.writes_to(victim["endpointName"], victim["endpointConfigName"], victim["modelName"]) == []
    assert (t.victim.endpoint(victim["endpointName"]) or {}).get("EndpointStatus") == "InService"


def test_moving_buckets_while_the_model_cannot_be_created_leaves_nothing_behind(tenancy: Tenancy) -> None:
    """An artifact no model points at is never left: the model is the record of where artifacts are."""
    t, c, ns = tenancy, tenancy.victim, tenancy.victim.namespace
    t.emulator.faults.deny("CreateModel")
    _apply_as(t.victim_tenant, ns, endpoint_manifest("denied"))
    c.wait_condition("denied", "Reconciling", "AccessDenied")
    uid = _uid(c, "denied")
    _apply_as(t.victim_tenant, ns, endpoint_manifest("denied", aws__artifactBucket=SECOND_BUCKET))
    wait_for(lambda: c.status("denied").get("artifact", {}).get("uri", "").startswith(f"s3://{SECOND_BUCKET}/"),
             timeout=30, what="the new bucket tried")  # fmt: skip
    t.emulator.faults.clear()
    c.wait_ready("denied")
    assert [k for k in c.artifact_keys() if f"/{uid}/" in k] == [], "nothing left in the first bucket"
    c.delete("denied")
    assert _owned_everywhere(t, uid) == {}
