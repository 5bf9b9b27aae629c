"""manifests/argocd/health.lua, run by a real Lua interpreter (lupa) against DjlEndpoint statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

lupa = pytest.importorskip("lupa", reason="lupa (the test extra) runs the Lua health check")

ARGOCD = Path(__file__).resolve().parents[2] / "manifests" / "argocd"
HEALTH_KEY = "resource.customizations.health.serving.djl-operator.io_DjlEndpoint"


def health(body: dict[str, Any]) -> tuple[str, str]:
    """Run health.lua the way Argo CD does: the resource in the global ``obj``, a table returned."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(body, recursive=True)
    result = lua.execute((ARGOCD / "health.lua").read_text())
    return str(result["status"]), str(result["message"])


def cond(kind: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def resource(status: dict[str, Any] | None, generation: int = 2) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "serving.djl-operator.io/v1alpha1",
        "kind": "DjlEndpoint",
        "metadata": {"name": "demo", "namespace": "ml", "generation": generation},
        "spec": {"model": {"id": "m"}},
    }
    if status is not None:
        body["status"] = status
    return body


READY = cond("Ready", "True", "InService", "endpoint ml-demo is InService")
ROLLOUT_MESSAGE = (
    "endpoint is Updating (serving c1); Canary rollout of c2: Baking until 2026-11-26T09:00:00Z, 10% on it"
)
NOT_STALLED = cond("Stalled", "False", "Progressing")


@pytest.mark.parametrize(
    ("status", "generation", "expected_status", "message_part"),
    [
        pytest.param(None, 1, "Progressing", "Waiting for the operator", id="no status yet"),
        pytest.param({}, 1, "Progressing", "Waiting", id="empty status"),
        pytest.param({"observedGeneration": 1}, 1, "Progressing", "Waiting", id="no conditions"),
        pytest.param(
            {"observedGeneration": 2, "phase": "InService", "conditions": [READY, NOT_STALLED]},
            2,
            "Healthy",
            "is InService",
            id="ready and current",
        ),
        pytest.param(
            {"observedGeneration": 1, "phase": "InService", "conditions": [READY, NOT_STALLED]},
            2,
            "Progressing",
            "generation 2",
            id="ready for an older generation",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "Creating",
                "conditions": [cond("Ready", "False", "Creating", "endpoint is Creating"), NOT_STALLED],
            },
            2,
            "Progressing",
            "Creating: endpoint is Creating",
            id="creating",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "Updating",
                "conditions": [cond("Ready", "False", "Updating"), cond("Reconciling", "True", "Updating")],
            },
            2,
            "Progressing",
            "Updating",
            id="updating",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "Updating",
                "rollout": {
                    "strategy": "Canary",
                    "stage": "Baking",
                    "trafficPercent": 10,
                    "summary": "Canary 10% Baking",
                },
                "conditions": [
                    cond("Ready", "False", "Updating", ROLLOUT_MESSAGE),
                    cond("Reconciling", "True", "Updating", ROLLOUT_MESSAGE),
                    cond("Stalled", "False", "Updating"),
                ],
            },
            2,
            "Progressing",
            "Updating: " + ROLLOUT_MESSAGE,
            id="a canary baking",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "RolledBack",
                "failureReason": "rolled back because CloudWatch alarm(s) [ep-5xx] went into ALARM",
                "conditions": [
                    cond("Ready", "False", "RolledBackByAlarm", "rolled back by CloudWatch alarm ep-5xx"),
                    cond("Reconciling", "False", "RolledBackByAlarm"),
                    cond("Stalled", "True", "RolledBackByAlarm", "rolled back by CloudWatch alarm ep-5xx"),
                ],
            },
            2,
            "Degraded",
            "RolledBackByAlarm: rolled back by CloudWatch alarm ep-5xx",
            id="rolled back by an alarm",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "Pending",
                "conditions": [
                    cond("Ready", "False", "InvalidSpec", "spec.instance.type: unknown"),
                    cond("Stalled", "True", "InvalidSpec", "spec.instance.type: unknown"),
                ],
            },
            2,
            "Degraded",
            "InvalidSpec: spec.instance.type: unknown",
            id="stalled",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "Failed",
                "failureReason": "model server crashed",
                "conditions": [cond("Ready", "False", "EndpointFailed")],
            },
            2,
            "Degraded",
            "EndpointFailed: model server crashed",
            id="failed phase",
        ),
        pytest.param({"observedGeneration": 2, "phase": "Failed"}, 2, "Degraded", "Failed", id="failed, no conditions"),
        pytest.param(
            {"observedGeneration": 0, "phase": "Pending"}, 1, "Progressing", "Waiting", id="the CRD's initial status"
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "Creating",
                "failureReason": "CapacityError: Unable to provision requested ML compute capacity.",
                "conditions": [
                    cond("Ready", "False", "InsufficientCapacity", "CapacityError: no capacity; retrying in 590s"),
                    cond("Reconciling", "True", "InsufficientCapacity", "CapacityError: no capacity; retrying in 590s"),
                    cond("Stalled", "False", "InsufficientCapacity"),
                ],
            },
            2,
            "Progressing",
            "InsufficientCapacity: CapacityError: no capacity; retrying in 590s",
            id="capacity wait the operator retries",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "Failed",
                "conditions": [
                    cond("Ready", "False", "EndpointOutOfService", "endpoint is OutOfService"),
                    cond("Reconciling", "True", "EndpointOutOfService", "endpoint is OutOfService"),
                ],
            },
            2,
            "Progressing",
            "EndpointOutOfService",
            id="out of service, still watched",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "RolledBack",
                "conditions": [
                    cond("Ready", "False", "UpdateRolledBack", "update rolled back; demo-old is still serving"),
                    cond("Reconciling", "False", "UpdateRolledBack"),
                    cond("Stalled", "True", "UpdateRolledBack", "update rolled back; demo-old is still serving"),
                ],
            },
            2,
            "Degraded",
            "UpdateRolledBack: update rolled back",
            id="rolled back",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "InService",
                "conditions": [READY, cond("Stalled", "True", "AccessDenied", "sagemaker:UpdateEndpoint")],
            },
            2,
            "Degraded",
            "AccessDenied: sagemaker:UpdateEndpoint",
            id="stalled wins over ready",
        ),
    ],
)
def test_health(status: dict[str, Any] | None, generation: int, expected_status: str, message_part: str) -> None:
    got_status, message = health(resource(status, generation))
    assert got_status == expected_status
    assert message_part in message


def test_argocd_cm_embeds_the_same_lua() -> None:
    configmap = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["name"] == "argocd-cm"
    assert configmap["data"][HEALTH_KEY] == (ARGOCD / "health.lua").read_text()


def test_application_deploys_the_manifests_base() -> None:
    app = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    assert app["kind"] == "Application"
    assert app["spec"]["source"]["path"] == "manifests"
    assert app["spec"]["destination"]["namespace"] == "djl-operator-system"
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_an_endpoint_scaling_on_the_specs_config_is_healthy() -> None:
    """Autoscaling puts the endpoint in Updating for every scale-out/in: still Healthy, never Progressing."""
    import datetime as dt

    from djl_operator import conditions
    from djl_operator.api import DjlEndpointStatus
    from djl_operator.planner import Desired, ObservedEndpoint, plan

    desired = Desired(endpoint_name="ns-demo", model_name="demo-m", config_name="demo-new", region="us-east-1")
    scaling = ObservedEndpoint("ns-demo", "arn", "Updating", "demo-new", current_instances=1, desired_instances=3)
    previous = DjlEndpointStatus.model_validate({"phase": "InService", "endpointConfigName": "demo-new"})
    result = plan(desired, scaling, previous, now=dt.datetime(2026, 11, 26, tzinfo=dt.UTC), capacity_backoff=600)
    written = conditions.merge([], result.conditions, now="2026-11-26T00:00:00Z", generation=2)
    status = {"observedGeneration": 2, "phase": result.phase.value, "endpointStatus": "Updating", "conditions": written}
    assert health(resource(status)) == ("Healthy", "endpoint is InService on demo-new; scaling to 3 instances")
