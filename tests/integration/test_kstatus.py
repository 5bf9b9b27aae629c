"""What kstatus (Flux, kpt, cli-utils) reads for a DjlEndpoint before the operator has written anything."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from djl_operator import conditions, rollout
from djl_operator.api import DjlEndpointStatus
from djl_operator.planner import Desired, ObservedEndpoint, plan
from tests.integration.test_crd_apiserver import VALID
from tests.plugins import kstatus
from tests.plugins.controlplane import Kubectl


def test_a_new_object_reads_in_progress_before_any_operator_write(kubectl: Kubectl, namespace: str) -> None:
    # No operator runs against this control plane: whatever status there is comes from the API server.
    manifest = copy.deepcopy(VALID)
    manifest["metadata"]["name"] = "fresh"
    kubectl.apply(manifest, "-n", namespace)
    read = kubectl.get_json("djle", "fresh", "-n", namespace)
    assert read["status"] == {"observedGeneration": 0, "phase": "Pending"}
    assert kstatus.compute(read) == ("InProgress", "DjlEndpoint generation is 1, but latest observed generation is 0")


def test_a_spec_edit_reads_in_progress_until_observed(kubectl: Kubectl, namespace: str) -> None:
    manifest = copy.deepcopy(VALID)
    manifest["metadata"]["name"] = "edited"
    kubectl.apply(manifest, "-n", namespace)
    manifest["spec"]["instance"]["count"] = 2
    kubectl.apply(manifest, "-n", namespace)
    read = kubectl.get_json("djle", "edited", "-n", namespace)
    assert read["metadata"]["generation"] == 2
    assert kstatus.compute(read)[0] == "InProgress"


CAPACITY = "CapacityError: Unable to provision requested ML compute capacity."
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
DESIRED = Desired(
    endpoint_name="ns-demo",
    model_name="demo-aaaa",
    config_name="demo-new",
    region="us-east-1",
    rollback_alarms=("ep-5xx",),
)


def _written(observed: ObservedEndpoint, previous: dict[str, object]) -> dict[str, object]:
    """The object as it reads after the operator wrote the planner's status for ``observed``."""
    result = plan(DESIRED, observed, DjlEndpointStatus.model_validate(previous), now=NOW, capacity_backoff=600)
    status = {
        "observedGeneration": 2,
        "phase": result.phase.value,
        "conditions": conditions.merge([], result.conditions, now="2026-11-25T12:00:00Z", generation=2),
    }
    body = copy.deepcopy(VALID)
    body["metadata"]["generation"] = 2
    return {**body, "status": status}


@pytest.mark.parametrize(
    ("observed", "previous", "expected"),
    [
        pytest.param(
            ObservedEndpoint("ns-demo", "arn", "Failed", "demo-new", CAPACITY, last_modified=NOW),
            {"phase": "Creating"},
            "InProgress",
            id="capacity wait: the operator retries by itself",
        ),
        pytest.param(
            ObservedEndpoint("ns-demo", "arn", "InService", "demo-old", "OOM"),
            {"phase": "Updating", "desiredEndpointConfigName": "demo-new"},
            "Failed",
            id="rolled back: nothing changes until the spec does",
        ),
        pytest.param(ObservedEndpoint("ns-demo", "arn", "InService", "demo-new"), {}, "Current", id="ready"),
        pytest.param(
            ObservedEndpoint("ns-demo", "arn", "Updating", "demo-new", current_instances=1, desired_instances=3),
            {"phase": "InService", "endpointConfigName": "demo-new"},
            "Current",
            id="scaling: autoscaling changes the count of the spec's config",
        ),
        pytest.param(
            ObservedEndpoint("ns-demo", "arn", "Updating", "demo-old", current_instances=3, desired_instances=3),
            {"phase": "Updating", "desiredEndpointConfigName": "demo-new"},
            "InProgress",
            id="blue/green update to the spec's config",
        ),
        pytest.param(
            ObservedEndpoint(
                "ns-demo", "arn", "Updating", "demo-old", progress=rollout.Progress("demo-new", "Baking", 10, NOW)
            ),
            {"phase": "Updating", "desiredEndpointConfigName": "demo-new"},
            "InProgress",
            id="a canary baking",
        ),
        pytest.param(
            ObservedEndpoint("ns-demo", "arn", "InService", "demo-old", "alarm(s) [ep-5xx] went into ALARM"),
            {"phase": "Updating", "desiredEndpointConfigName": "demo-new"},
            "Failed",
            id="rolled back by an alarm",
        ),
    ],
)
def test_what_kstatus_reads_from_the_operators_status(
    observed: ObservedEndpoint, previous: dict[str, object], expected: str
) -> None:
    assert kstatus.compute(_written(observed, previous))[0] == expected
