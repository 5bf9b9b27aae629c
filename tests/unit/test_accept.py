"""A new generation's first status is written before any AWS call (reconcile.accept)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from djl_operator import api
from djl_operator.reconcile import Context, Next, accept
from djl_operator.settings import Settings
from tests.plugins.operator import endpoint_manifest

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


class NoAws:
    """Clients that fail the test on any use: accept() must not reach AWS."""

    def for_region(self, region: str) -> Any:
        raise AssertionError(f"accept() asked for AWS clients in {region}")


def _context() -> Context:
    return Context(settings=Settings(), clients=NoAws(), clock=lambda: NOW)  # type: ignore[arg-type]


def _resource(generation: int, status: dict[str, Any] | None = None, **spec: Any) -> api.DjlEndpointResource:
    body = endpoint_manifest("demo", **spec)
    body["metadata"].update(namespace="ml", uid="6f1c-accept", generation=generation)
    body["status"] = status or {"observedGeneration": 0, "phase": "Pending"}
    return api.DjlEndpointResource.from_body(body)


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_new_resource_reads_reconciling_at_its_generation_before_any_aws_call() -> None:
    outcome = accept(_resource(1), _context())
    assert outcome.next is Next.POLL and outcome.delay == 0.0  # reconciled on the next tick
    assert outcome.status["observedGeneration"] == 1
    assert outcome.status["phase"] == "Creating"
    conditions = _conditions(outcome.status)
    assert conditions["Reconciling"]["status"] == "True" and conditions["Reconciling"]["reason"] == "Creating"
    assert conditions["Stalled"]["status"] == "False"
    # endpoint_manifest is the seed case: djl-deepspeed, deprecated upstream, so one Warning says so.
    assert [(kind, reason) for kind, reason, _ in outcome.events] == [("Warning", "DeprecatedImage")]


def test_a_current_image_family_posts_no_warning() -> None:
    outcome = accept(_resource(1, image={"framework": "djl-lmi"}), _context())
    assert outcome.events == []


def test_a_deprecated_family_or_engine_warns_once_per_generation_and_never_fails() -> None:
    outcome = accept(_resource(1, image={"framework": "djl-deepspeed", "version": "0.27.0"},
                               model__engine="DeepSpeed", model__task="text-generation"), _context())  # fmt: skip
    assert outcome.next is Next.POLL
    ((kind, reason, message),) = outcome.events
    assert (kind, reason) == ("Warning", "DeprecatedImage")
    assert "djl-deepspeed" in message and "DeepSpeed" in message


def test_an_edit_of_a_serving_resource_reads_updating() -> None:
    serving = {"observedGeneration": 1, "phase": "InService", "endpointName": "ml-demo-1234"}
    outcome = accept(_resource(2, serving, instance__count=2), _context())
    assert outcome.status["phase"] == "Updating"
    assert _conditions(outcome.status)["Reconciling"]["reason"] == "Updating"


def test_an_invalid_spec_stalls_at_acceptance() -> None:
    outcome = accept(_resource(1, model__properties={"engine": "Nope"}), _context())
    assert outcome.next is Next.STALLED
    assert _conditions(outcome.status)["Stalled"]["reason"] in ("InvalidSpec", "PolicyViolation")


def test_any_spec_change_after_a_rollback_asks_again() -> None:
    """The planner reads a rollback as 'already reported' only while status still names the
    rolled-back request; a new generation clears it, so a rollout-only edit retries the update."""
    rolled_back = {
        "observedGeneration": 2,
        "phase": "RolledBack",
        "endpointName": "ml-demo-1234abcd",
        "endpointConfigName": "demo-old",
        "desiredEndpointConfigName": "demo-new",
    }
    outcome = accept(_resource(3, rolled_back), _context())
    assert outcome.status["phase"] == "Updating"
    assert "desiredEndpointConfigName" in outcome.status and outcome.status["desiredEndpointConfigName"] is None
    # Any other phase keeps what it asked for (an update in flight is still that request).
    updating = {**rolled_back, "phase": "Updating"}
    assert "desiredEndpointConfigName" not in accept(_resource(3, updating), _context()).status


def test_accepting_a_generation_indexes_its_endpoint_name_for_events() -> None:
    """An endpoint's state-change event finds its resource from the moment the name is known,
    not only after the tick has read the status back (under load that lags by far)."""
    import kopf

    from djl_operator import handlers
    from djl_operator.events import EndpointIndex
    from djl_operator.schedule import Scheduler

    class Readers:
        index = EndpointIndex()

    ctx = _context()
    memo = kopf.Memo(ctx=ctx, scheduler=Scheduler(ctx.settings), readers=Readers(), events=handlers.EventFilter())
    body = endpoint_manifest("demo", image={"framework": "djl-lmi"}, endpointName="ml-demo-events")
    body["metadata"].update(namespace="ml", uid="6f1c-index", generation=1)
    patch = kopf.Patch()
    handlers._reconcile_once(kopf.Body(body), patch, memo, new_generation=True)
    assert patch["status"]["endpointName"] == "ml-demo-events"
    assert Readers.index.lookup("us-east-1", "ml-demo-events") == "6f1c-index"
