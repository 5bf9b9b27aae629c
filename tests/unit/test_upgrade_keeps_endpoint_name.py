"""An operator upgrade keeps the endpoint name (and so the URL) of an endpoint made before owner-aware names.

In process: reconcile() against the emulator, with endpoints as an earlier operator version left them.
"""

from __future__ import annotations

from typing import Any

import pytest

from djl_operator import api, naming
from djl_operator.reconcile import Context, reconcile
from djl_operator_kit.emulator import Emulator
from tests.plugins.operator import endpoint_manifest

UID = "5d1c2b3a-0f9e-4d8c-b7a6-918273645546"
LEGACY = naming.legacy_endpoint_name("team", "bart")


@pytest.fixture
def ctx(reconcile_ctx: Context) -> Context:
    return reconcile_ctx


def _old_endpoint(emulator: Emulator, owner: str) -> str:
    """What an earlier operator version made: ``<namespace>-<name>``, tagged with its owner's uid."""
    sm = emulator.client("sagemaker")
    tags = [{"Key": naming.TAG_OWNER_UID, "Value": owner}, {"Key": naming.TAG_MANAGED_BY, "Value": naming.MANAGED_BY}]
    sm.create_model(ModelName="bart-old", ExecutionRoleArn="arn:aws:iam::123456789012:role/R",
                    PrimaryContainer={"Image": "example.com/old:1"}, Tags=tags)  # fmt: skip
    variant = {"VariantName": "AllTraffic", "ModelName": "bart-old", "InstanceType": "ml.g5.12xlarge",
               "InitialInstanceCount": 1}  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName="bart-old", ProductionVariants=[variant], Tags=tags)
    arn: str = sm.create_endpoint(EndpointName=LEGACY, EndpointConfigName="bart-old", Tags=tags)["EndpointArn"]
    return arn


def _resource(status: dict[str, Any]) -> api.DjlEndpointResource:
    body = endpoint_manifest("bart")
    body["metadata"].update(namespace="team", uid=UID, generation=2)
    body["status"] = status
    return api.DjlEndpointResource.from_body(body)


def _creates(emulator: Emulator) -> list[str | None]:
    return [c.resource for c in emulator.calls(service="sagemaker", operation="CreateEndpoint")]


def test_the_old_name_is_kept_when_the_endpoint_is_ours(emulator: Emulator, ctx: Context) -> None:
    arn = _old_endpoint(emulator, UID)
    assert naming.endpoint_name("team", "bart") != LEGACY
    emulator.reset_calls()
    outcome = reconcile(_resource({"phase": "InService", "endpointArn": arn}), ctx)
    assert outcome.status["endpointName"] == LEGACY
    assert _creates(emulator) == [], "no second endpoint"
    updates = emulator.calls(service="sagemaker", operation="UpdateEndpoint")
    assert [c.resource for c in updates] == [LEGACY], "moved to the new model and config in place (blue/green)"


def test_someone_elses_endpoint_under_the_old_name_is_not_taken(emulator: Emulator, ctx: Context) -> None:
    """The status hint is forgeable; the owner tag is not."""
    arn = _old_endpoint(emulator, "someone-else")
    emulator.reset_calls()
    outcome = reconcile(_resource({"phase": "InService", "endpointArn": arn}), ctx)
    assert outcome.status["endpointName"] == naming.endpoint_name("team", "bart")
    writes = [c for c in emulator.calls(service="sagemaker") if c.operation in ("UpdateEndpoint", "DeleteEndpoint")]
    assert writes == []
    assert _creates(emulator) == [naming.endpoint_name("team", "bart")]
