"""The planner, table by table: (observed world, previous status) -> actions and status."""

from __future__ import annotations

import datetime as dt

import pytest

from djl_operator.api import DjlEndpointStatus, Phase
from djl_operator.planner import PREPARE, Action, Desired, Next, ObservedEndpoint, plan, plan_delete

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
DESIRED = Desired(endpoint_name="ns-demo", model_name="demo-aaaa", config_name="demo-new", region="us-east-1")
CAPACITY = "CapacityError: Unable to provision requested ML compute capacity."


def _endpoint(
    status: str,
    config: str = "demo-new",
    failure: str | None = None,
    owned: bool = True,
    name: str = "ns-demo",
    failed_ago: float | None = None,
) -> ObservedEndpoint:
    return ObservedEndpoint(
        name=name,
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
        status=status,
        config_name=config,
        failure_reason=failure,
        owned=owned,
        last_modified=None if failed_ago is None else NOW - dt.timedelta(seconds=failed_ago),
    )


def _status(**fields: object) -> DjlEndpointStatus:
    return DjlEndpointStatus.model_validate(fields)


# (id, observed, previous status, actions, phase, ready reason, stalled, wait)
CASES = [
    ("fresh create", None, _status(), [*PREPARE, Action.CREATE_ENDPOINT], Phase.CREATING, "Creating", False, Next.POLL),
    ("still creating", _endpoint("Creating"), _status(), [], Phase.CREATING, "Creating", False, Next.POLL),
    (
        "in service first time",
        _endpoint("InService"),
        _status(phase="Creating"),
        [Action.COLLECT_GARBAGE],
        Phase.IN_SERVICE,
        "EndpointInService",
        False,
        Next.DONE,
    ),
    (
        "steady state",
        _endpoint("InService"),
        _status(phase="InService", endpointConfigName="demo-new"),
        [],
        Phase.IN_SERVICE,
        "EndpointInService",
        False,
        Next.DONE,
    ),
    (
        "spec changed",
        _endpoint("InService", config="demo-old"),
        _status(phase="InService", endpointConfigName="demo-old", desiredEndpointConfigName="demo-old"),
        [*PREPARE, Action.UPDATE_ENDPOINT],
        Phase.UPDATING,
        "Updating",
        False,
        Next.POLL,
    ),
    (
        "updating",
        _endpoint("Updating", config="demo-old"),
        _status(desiredEndpointConfigName="demo-new"),
        [],
        Phase.UPDATING,
        "Updating",
        False,
        Next.POLL,
    ),
    (
        "rolling back",
        _endpoint("RollingBack", config="demo-old"),
        _status(desiredEndpointConfigName="demo-new"),
        [],
        Phase.UPDATING,
        "RollingBack",
        False,
        Next.POLL,
    ),
    (
        "rolled back",
        _endpoint("InService", config="demo-old", failure="model failed to start"),
        _status(phase="Updating", desiredEndpointConfigName="demo-new"),
        [Action.COLLECT_ROLLED_BACK],  # the rolled-back model and config go, once
        Phase.ROLLED_BACK,
        "UpdateRolledBack",
        True,
        Next.STALLED,
    ),
    (
        "rolled back, seen",
        _endpoint("InService", config="demo-old", failure="model failed to start"),
        _status(phase="RolledBack", desiredEndpointConfigName="demo-new"),
        [],
        Phase.ROLLED_BACK,
        "UpdateRolledBack",
        True,
        Next.STALLED,
    ),
    (
        "new spec after rollback",
        _endpoint("InService", config="demo-old", failure="model failed to start"),
        _status(phase="Failed", desiredEndpointConfigName="demo-broken"),
        [*PREPARE, Action.UPDATE_ENDPOINT],
        Phase.UPDATING,
        "Updating",
        False,
        Next.POLL,
    ),
    (
        "out-of-band config change",
        _endpoint("InService", config="demo-other"),
        _status(phase="InService", endpointConfigName="demo-new", desiredEndpointConfigName="demo-new"),
        [*PREPARE, Action.UPDATE_ENDPOINT],
        Phase.UPDATING,
        "Updating",
        False,
        Next.POLL,
    ),
    (
        "out-of-band delete",
        None,
        _status(phase="InService", endpointArn="arn:x", endpointConfigName="demo-new"),
        [*PREPARE, Action.CREATE_ENDPOINT],
        Phase.CREATING,
        "Creating",
        False,
        Next.POLL,
    ),
    (
        "create failed",
        _endpoint("Failed", failure="model data not found"),
        _status(phase="Creating"),
        [],
        Phase.FAILED,
        "EndpointFailed",
        True,
        Next.STALLED,
    ),
    (
        "spec fixed after failure",
        _endpoint("Failed", config="demo-broken", failure="boom"),
        _status(phase="Failed"),
        [*PREPARE, Action.DELETE_ENDPOINT],
        Phase.CREATING,
        "RecreatingFailedEndpoint",
        False,
        Next.POLL,
    ),
    (
        "old endpoint deleting",
        _endpoint("Deleting", config="demo-broken"),
        _status(phase="Creating"),
        [],
        Phase.CREATING,
        "WaitingForDeletion",
        False,
        Next.POLL,
    ),
    (
        "capacity failure first seen",
        _endpoint("Failed", failure=CAPACITY, failed_ago=0),
        _status(phase="Creating"),
        [],
        Phase.CREATING,
        "InsufficientCapacity",
        False,
        Next.RETRY,
    ),
    (
        "capacity failure within backoff",
        _endpoint("Failed", failure=CAPACITY, failed_ago=10),
        _status(phase="Creating"),
        [],
        Phase.CREATING,
        "InsufficientCapacity",
        False,
        Next.RETRY,
    ),
    (
        "capacity failure after backoff",
        _endpoint("Failed", failure=CAPACITY, failed_ago=700),
        _status(phase="Creating"),
        [Action.DELETE_ENDPOINT],
        Phase.CREATING,
        "RetryingCapacity",
        False,
        Next.POLL,
    ),
    (
        "name conflict",
        _endpoint("InService", config="theirs", owned=False),
        _status(),
        [],
        Phase.FAILED,
        "EndpointNameConflict",
        True,
        Next.STALLED,
    ),
    (
        "rollback failed",
        _endpoint("UpdateRollbackFailed", config="demo-old", failure="x"),
        _status(),
        [],
        Phase.FAILED,
        "UpdateRollbackFailed",
        True,
        Next.STALLED,
    ),
]


@pytest.mark.parametrize(
    ("observed", "previous", "actions", "phase", "reason", "stalled", "wait"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan(observed, previous, actions, phase, reason, stalled, wait) -> None:  # type: ignore[no-untyped-def]
    result = plan(DESIRED, observed, previous, now=NOW, capacity_backoff=600, generation=2, others=())
    assert result.actions == actions
    assert result.phase == phase
    assert result.conditions["Ready"].reason == reason
    assert result.conditions["Stalled"].status is stalled
    # Stalled only when nothing changes without a spec change; every wait that retries by itself is Reconciling.
    assert result.conditions["Reconciling"].status is (wait in (Next.POLL, Next.RETRY))
    assert result.next == wait
    assert result.ready is (phase == Phase.IN_SERVICE)
    assert result.conditions["Ready"].status is result.ready


def test_rolled_back_names_the_old_config_and_the_reason() -> None:
    result = plan(
        DESIRED,
        _endpoint("InService", config="demo-old", failure="OOM while loading"),
        _status(desiredEndpointConfigName="demo-new"),
        now=NOW,
        capacity_backoff=600,
    )
    assert result.serving_config == "demo-old"
    assert "OOM while loading" in result.conditions["Stalled"].message
    assert result.failure_reason == "OOM while loading"
    assert result.event is not None and result.event[1] == "UpdateRolledBack"


def test_capacity_retry_counts_down_from_the_stall() -> None:
    result = plan(
        DESIRED,
        _endpoint("Failed", failure=CAPACITY, failed_ago=100),
        _status(phase="Creating"),
        now=NOW,
        capacity_backoff=600,
    )
    assert result.retry_in == pytest.approx(500)
    assert result.next is Next.RETRY and result.phase is Phase.CREATING


def test_a_capacity_wait_warns_once() -> None:
    first = plan(DESIRED, _endpoint("Failed", failure=CAPACITY, failed_ago=0), _status(), now=NOW, capacity_backoff=600)
    assert first.event is not None and first.event[1] == "InsufficientCapacity"
    waiting = _status(
        conditions=[
            {"type": "Reconciling", "status": "True", "reason": "InsufficientCapacity", "lastTransitionTime": "x"}
        ]
    )
    again = plan(DESIRED, _endpoint("Failed", failure=CAPACITY, failed_ago=60), waiting, now=NOW, capacity_backoff=600)
    assert again.event is None


def test_a_rolled_back_update_reads_as_what_serves() -> None:
    result = plan(
        DESIRED,
        _endpoint("InService", config="demo-old", failure="OOM while loading"),
        _status(phase="Updating", endpointConfigName="demo-old", desiredEndpointConfigName="demo-new"),
        now=NOW,
        capacity_backoff=600,
    )
    assert result.phase is Phase.ROLLED_BACK  # not Failed: the old config still serves
    assert result.conditions["Ready"].reason == "UpdateRolledBack"
    assert result.serving_config == "demo-old"


@pytest.mark.parametrize(
    ("generation", "reported_at", "retried"),
    [(2, 2, False), (3, 2, True), (None, 2, False)],
    ids=["the same generation stays stalled", "a later generation tries again", "generation unknown: stays"],
)
def test_a_spec_change_after_a_rollback_tries_the_update_again(
    generation: int | None, reported_at: int, retried: bool
) -> None:
    """Even when the config is unchanged (only spec.rollout or its alarms changed), and even when
    the status read is the one reported before the change."""
    result = plan(
        DESIRED,
        _endpoint("InService", config="demo-old", failure="rolled back by alarm"),
        _status(
            phase="RolledBack",
            observedGeneration=reported_at,
            endpointConfigName="demo-old",
            desiredEndpointConfigName="demo-new",
        ),
        now=NOW,
        capacity_backoff=600,
        generation=generation,
    )
    assert (Action.UPDATE_ENDPOINT in result.actions) is retried
    assert result.phase is (Phase.UPDATING if retried else Phase.ROLLED_BACK)
    assert result.next is (Next.POLL if retried else Next.STALLED)


def test_out_of_band_change_is_reported_as_drift() -> None:
    result = plan(
        DESIRED,
        _endpoint("InService", config="demo-other"),
        _status(endpointConfigName="demo-new", desiredEndpointConfigName="demo-new"),
        now=NOW,
        capacity_backoff=600,
    )
    assert result.event is not None and result.event[1] == "DriftRestored"


# (id, observed, retain, actions, wait)
OLD = "ns-old-name"
DELETE_CASES = [
    ("retain", (_endpoint("InService"),), True, [], (), Next.DONE),
    ("in service", (_endpoint("InService"),), False, [Action.DELETE_ENDPOINT], ("ns-demo",), Next.POLL),
    ("failed", (_endpoint("Failed"),), False, [Action.DELETE_ENDPOINT], ("ns-demo",), Next.POLL),
    ("creating waits", (_endpoint("Creating"),), False, [], (), Next.POLL),
    ("updating waits", (_endpoint("Updating"),), False, [], (), Next.POLL),
    ("deleting waits", (_endpoint("Deleting"),), False, [], (), Next.POLL),
    ("gone", (), False, [Action.DELETE_ALL_OWNED], (), Next.DONE),
    ("foreign endpoint untouched", (_endpoint("InService", owned=False),), False, [Action.DELETE_ALL_OWNED], (),
     Next.DONE),
    ("every name it ever used", (_endpoint("InService"), _endpoint("InService", name=OLD)), False,
     [Action.DELETE_ENDPOINT], ("ns-demo", OLD), Next.POLL),
    ("the idle one goes while the busy one waits", (_endpoint("Creating"), _endpoint("Failed", name=OLD)), False,
     [Action.DELETE_ENDPOINT], (OLD,), Next.POLL),
]  # fmt: skip


@pytest.mark.parametrize(
    ("owned", "retain", "actions", "deleted", "wait"),
    [c[1:] for c in DELETE_CASES],
    ids=[c[0] for c in DELETE_CASES],
)
def test_plan_delete(owned, retain, actions, deleted, wait) -> None:  # type: ignore[no-untyped-def]
    result = plan_delete(owned, retain=retain)
    assert result.actions == actions
    assert result.delete_endpoints == deleted
    assert result.next == wait
    assert result.phase == Phase.DELETING


# A renamed endpoint (spec.endpointName changed): the new one is InService on the desired config.
# (id, others, cleanup pending, actions, deleted, wait, still pending)
RENAME_CASES = [
    ("old one still serving: delete it, keep its config", (_endpoint("InService", name=OLD),), False,
     [Action.DELETE_OTHER_ENDPOINTS], (OLD,), Next.POLL, True),
    ("old one going away: wait", (_endpoint("Deleting", name=OLD),), True, [], (), Next.POLL, True),
    ("old one still creating: wait, never delete mid-create", (_endpoint("Creating", name=OLD),), True, [], (),
     Next.POLL, True),
    ("old one gone: collect garbage", (), True, [Action.COLLECT_GARBAGE], (), Next.DONE, False),
    ("someone else's endpoint is never touched", (_endpoint("InService", name=OLD, owned=False),), True,
     [Action.COLLECT_GARBAGE], (), Next.DONE, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("others", "pending", "actions", "deleted", "wait", "still_pending"),
    [c[1:] for c in RENAME_CASES],
    ids=[c[0] for c in RENAME_CASES],
)
def test_old_endpoints_go_once_the_new_one_serves(  # type: ignore[no-untyped-def]
    others, pending, actions, deleted, wait, still_pending
) -> None:
    result = plan(
        DESIRED,
        _endpoint("InService"),
        _status(phase="Creating", endpointName=OLD),
        now=NOW,
        capacity_backoff=600,
        generation=3,
        others=others,
        cleanup_pending=pending,
    )
    assert result.ready, "the new endpoint serves while the old ones go"
    assert result.actions == actions
    assert result.delete_endpoints == deleted
    assert result.next == wait
    assert result.cleanup_pending is still_pending


def test_the_planner_asks_for_every_owned_endpoint_before_collecting() -> None:
    result = plan(DESIRED, _endpoint("InService"), _status(phase="Creating"), now=NOW, capacity_backoff=600,
                  generation=2)  # fmt: skip
    assert result.needs_owned_endpoints
    assert result.actions == []


def test_a_new_resource_needs_no_search_for_old_endpoints() -> None:
    result = plan(DESIRED, _endpoint("InService"), _status(phase="Creating"), now=NOW, capacity_backoff=600,
                  generation=1)  # fmt: skip
    assert not result.needs_owned_endpoints
    assert result.actions == []


def test_someone_elses_endpoint_being_deleted_is_waited_for() -> None:
    result = plan(DESIRED, _endpoint("Deleting", owned=False), _status(), now=NOW, capacity_backoff=600)
    assert result.actions == []
    assert result.next == Next.POLL
    assert result.conditions["Stalled"].status is False
    assert result.conditions["Ready"].reason == "WaitingForDeletion"


@pytest.mark.parametrize(("previous_name", "event"), [("ns-demo", "EndpointRecreated"), (OLD, "Creating")])
def test_a_rename_is_not_reported_as_a_deletion(previous_name: str, event: str) -> None:
    # status.endpointName may already name the new endpoint (written before the first AWS call);
    # the ARN is what the last look saw serving.
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{previous_name}"
    previous = _status(phase="InService", endpointName=DESIRED.endpoint_name, endpointArn=arn)
    result = plan(DESIRED, None, previous, now=NOW, capacity_backoff=600)
    assert result.event is not None and result.event[1] == event


# (id, generation, previous status, collects garbage)
GARBAGE_CASES = [
    ("first spec, nothing else ever asked for", 1, {"phase": "Creating", "modelName": "demo-aaaa",
                                                      "desiredEndpointConfigName": "demo-new"}, False),
    ("a later spec", 2, {"phase": "Creating", "modelName": "demo-aaaa"}, True),
    ("names from an older operator", 1, {"phase": "Updating", "modelName": "demo-old-naming"}, True),
    ("generation unknown", None, {"phase": "Creating"}, True),
    ("steady state", 3, {"phase": "InService", "endpointConfigName": "demo-new"}, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("generation", "previous", "collects"), [c[1:] for c in GARBAGE_CASES], ids=[c[0] for c in GARBAGE_CASES]
)
def test_garbage_is_collected_only_when_some_can_exist(
    generation: int | None, previous: dict[str, str], collects: bool
) -> None:
    result = plan(
        DESIRED,
        _endpoint("InService"),
        _status(**previous),
        now=NOW,
        capacity_backoff=600,
        generation=generation,
        others=(),
    )
    assert result.ready
    assert (Action.COLLECT_GARBAGE in result.actions) is collects
