"""A reconcile or finalizer step that created, updated or deleted the endpoint looks again at once.

In process: reconcile()/finalize() against the emulator. Status then says what the endpoint does
right after the action (one status write instead of two), and what the look saw is what an
endpoint event is compared against (its own Creating event is no news).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from djl_operator import api
from djl_operator.planner import Next
from djl_operator.reconcile import Context, Outcome, _then, finalize, reconcile
from djl_operator_kit.emulator import Emulator
from tests.plugins.operator import endpoint_manifest

UID = "0b7c6d5e-4f3a-4b2c-9d1e-0f1a2b3c4d5e"


@pytest.fixture
def ctx(reconcile_ctx: Context) -> Context:
    return reconcile_ctx


def _resource(status: dict[str, Any], generation: int = 1, **spec: Any) -> api.DjlEndpointResource:
    body = endpoint_manifest("bart", **spec)
    body["metadata"].update(namespace="team", uid=UID, generation=generation)
    body["status"] = status
    return api.DjlEndpointResource.from_body(body)


def _sagemaker_calls(emulator: Emulator) -> list[str]:
    return [c.operation for c in emulator.calls(service="sagemaker")]


def test_a_create_reports_the_endpoint_creating_in_the_same_status_write(emulator: Emulator, ctx: Context) -> None:
    emulator.faults.set(create_delay=60.0)
    emulator.reset_calls()
    outcome = reconcile(_resource({"observedGeneration": 1, "phase": "Creating"}), ctx)
    assert _sagemaker_calls(emulator) == [
        "DescribeEndpoint",  # not there yet
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
        "DescribeEndpoint",  # the second look
    ]
    described = emulator.client("sagemaker").describe_endpoint(EndpointName=outcome.status["endpointName"])
    assert outcome.next is Next.POLL
    assert outcome.status["phase"] == "Creating"
    assert outcome.status["endpointStatus"] == "Creating"
    assert outcome.status["endpointUrl"].endswith(f"/endpoints/{outcome.status['endpointName']}/invocations")
    assert outcome.status["endpointArn"] == described["EndpointArn"]
    ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == f"endpoint is Creating on {outcome.status['desiredEndpointConfigName']}"
    assert [e[1] for e in outcome.events] == ["Packaging", "Creating"]  # the first look's, once each
    assert outcome.seen == ("Creating", described["LastModifiedTime"])


def test_a_settled_endpoint_is_looked_at_once(emulator: Emulator, ctx: Context) -> None:
    created = reconcile(_resource({"observedGeneration": 1}), ctx)
    assert created.status["endpointStatus"] == "InService"  # no creation delay: InService at the second look
    assert created.next is Next.DONE
    emulator.reset_calls()
    again = reconcile(_resource(created.status), ctx)
    assert _sagemaker_calls(emulator) == ["DescribeEndpoint"]
    assert again.events == [] and again.next is Next.DONE


def test_an_update_reports_the_endpoint_updating(emulator: Emulator, ctx: Context) -> None:
    created = reconcile(_resource({"observedGeneration": 1}), ctx)
    emulator.faults.set(update_delay=60.0)
    emulator.reset_calls()
    updated = reconcile(_resource(created.status, 2, instance__count=2), ctx)
    assert _sagemaker_calls(emulator)[-2:] == ["UpdateEndpoint", "DescribeEndpoint"]
    assert updated.status["phase"] == "Updating" and updated.status["endpointStatus"] == "Updating"
    assert updated.next is Next.POLL


@pytest.mark.parametrize(("delete_delay", "done"), [(0.0, True), (60.0, False)])
def test_a_finalizer_step_that_deletes_the_endpoint_looks_again(
    emulator: Emulator, ctx: Context, delete_delay: float, done: bool
) -> None:
    created = reconcile(_resource({"observedGeneration": 1}), ctx)
    emulator.faults.set(delete_delay=delete_delay)
    emulator.reset_calls()
    outcome = finalize(_resource(created.status), ctx)
    sagemaker = emulator.client("sagemaker")
    if done:  # gone at once: everything else goes in the same call
        assert outcome.next is Next.DONE
        assert [e[1] for e in outcome.events] == ["Deleting", "Deleted"]
        assert sagemaker.list_endpoints()["Endpoints"] == []
        assert sagemaker.list_models()["Models"] == [] and sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    else:  # AWS takes its time: the status says Deleting, and the finalizer comes back
        assert outcome.next is Next.POLL
        assert outcome.status["endpointStatus"] == "Deleting"
        assert [e[1] for e in outcome.events] == ["Deleting"]
        assert len(sagemaker.list_models()["Models"]) == 1  # nothing else goes before the endpoint
    assert _sagemaker_calls(emulator).count("DeleteEndpoint") == 1


def test_a_second_look_that_fails_leaves_the_first_as_it_was() -> None:
    """Throttled right after a create: the create's outcome stands (no backoff for a call that worked)."""
    first = Outcome(
        {"phase": "Creating", "endpointArn": "arn"}, Next.POLL, delay=30.0, events=[("Normal", "Creating", "x")]
    )
    failed = Outcome({"phase": "Creating", "failureReason": "throttled"}, Next.BACKOFF, events=[])
    assert _then(first, failed) is first
    later = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    second = Outcome(
        {"phase": "Creating", "endpointStatus": "Creating"}, Next.POLL, delay=30.0, seen=("Creating", later)
    )
    merged = _then(first, second)
    assert merged.status == {"phase": "Creating", "endpointArn": "arn", "endpointStatus": "Creating"}
    assert merged.events == [("Normal", "Creating", "x")] and merged.seen == ("Creating", later)
