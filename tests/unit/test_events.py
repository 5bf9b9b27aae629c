"""Events on transitions only (handlers.EventFilter)."""

from __future__ import annotations

from djl_operator.handlers import EventFilter

CREATING = ("Normal", "Creating", "creating endpoint ml-demo on demo-1")
IN_SERVICE = ("Normal", "InService", "endpoint ml-demo is InService on demo-1")
DENIED = ("Warning", "AccessDenied", "sagemaker:CreateModel was denied: not authorized")


def test_a_retried_step_posts_its_event_once() -> None:
    events = EventFilter()
    assert events.fresh("u", [CREATING]) == [CREATING]
    assert events.fresh("u", [CREATING]) == []  # the create planned again after a throttled attempt
    assert events.fresh("u", [DENIED]) == [DENIED]
    assert [events.fresh("u", [DENIED]) for _ in range(5)] == [[]] * 5  # a denial retried slowly


def test_a_transition_in_between_posts_again() -> None:
    events = EventFilter()
    recreated = ("Warning", "EndpointRecreated", "endpoint ml-demo was deleted outside the operator; recreating")
    assert events.fresh("u", [recreated]) == [recreated]
    assert events.fresh("u", [IN_SERVICE]) == [IN_SERVICE]
    assert events.fresh("u", [recreated]) == [recreated]


def test_resources_are_apart_and_forgotten() -> None:
    events = EventFilter()
    assert events.fresh("a", [CREATING]) == [CREATING]
    assert events.fresh("b", [CREATING]) == [CREATING]
    events.forget("a")
    assert events.fresh("a", [CREATING]) == [CREATING]
