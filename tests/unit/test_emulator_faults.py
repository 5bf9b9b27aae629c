"""Fault rules: deterministic throttling, glob matching, clear errors for bad settings."""

from __future__ import annotations

import pytest

from djl_operator_kit.emulator.faults import CAPACITY_REASON, Delays, Faults


def _throttled(faults: Faults, operations: list[str]) -> list[bool]:
    return [faults.request_error(op, "arn", "123456789012") is not None for op in operations]


def test_every_nth_call_is_throttled() -> None:
    faults = Faults()
    faults.throttle(every=3)
    assert _throttled(faults, ["DescribeEndpoint"] * 7) == [False, False, True, False, False, True, False]


def test_seeded_rate_repeats_and_roughly_holds() -> None:
    first, second = Faults(), Faults()
    first.throttle(rate=0.5, seed=7)
    second.throttle(rate=0.5, seed=7)
    a, b = _throttled(first, ["X"] * 200), _throttled(second, ["X"] * 200)
    assert a == b
    assert 70 < sum(a) < 130


def test_throttle_limit_and_operation_filter() -> None:
    faults = Faults()
    faults.throttle(every=1, operations=["CreateEndpoint"], limit=2)
    assert _throttled(faults, ["DescribeEndpoint", "CreateEndpoint", "CreateEndpoint", "CreateEndpoint"]) == [
        False,
        True,
        True,
        False,
    ]


def test_runtime_calls_are_only_throttled_when_named() -> None:
    faults = Faults()
    faults.throttle(every=1)
    assert faults.request_error("InvokeEndpoint", "arn", "1", control_plane=False) is None
    faults.throttle(every=1, operations=["InvokeEndpoint"])
    error = faults.request_error("InvokeEndpoint", "arn", "1", control_plane=False)
    assert error is not None and error.code == "ThrottlingException"


def test_deny_and_internal_error_codes() -> None:
    faults = Faults()
    faults.deny("CreateModel")
    faults.internal_error("DescribeEndpoint")
    denied = faults.request_error("CreateModel", "arn:aws:sagemaker:us-east-1:1:model/m", "1")
    assert denied is not None and denied.code == "AccessDeniedException" and "sagemaker:CreateModel" in denied.message
    internal = faults.request_error("DescribeEndpoint", "arn", "1")
    assert internal is not None and (internal.code, internal.status) == ("InternalFailure", 500)
    assert faults.request_error("ListModels", "arn", "1") is None


def test_model_rules_match_globs_on_name_or_image() -> None:
    faults = Faults()
    faults.fail_model_start(model_name="canary-*")
    faults.fail_model_start(image="*:broken", reason="custom")
    assert "did not pass the ping health check" in (faults.model_start_failure("canary-2", ["img:1"], "v") or "")
    assert faults.model_start_failure("stable", ["repo/img:broken"], "v") == "custom"
    assert faults.model_start_failure("stable", ["repo/img:1"], "v") is None


def test_capacity_rules() -> None:
    faults = Faults()
    faults.capacity_error(instance_type="ml.g5.*")
    assert faults.capacity_failure("ml.g5.12xlarge") == CAPACITY_REASON
    assert faults.capacity_failure("ml.m5.large") is None


def test_clear_restores_configured_delays() -> None:
    faults = Faults(Delays(create=2.0))
    faults.set(create_delay=9.0, delete_delay=1.0)
    faults.deny("CreateModel")
    assert faults.delays() == Delays(create=9.0, delete=1.0)
    faults.clear()
    assert faults.delays() == Delays(create=2.0)
    assert faults.request_error("CreateModel", "arn", "1") is None


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda f: f.set(create_delay=-1), "create_delay"),
        (lambda f: f.throttle(), "exactly one of rate"),
        (lambda f: f.throttle(rate=2.0), "rate"),
        (lambda f: f.throttle(every=0), "every"),
        (lambda f: f.fail_model_start(), "model_name or image"),
        (lambda f: f.quota("ml.g5.xlarge", -1), "instances"),
    ],
)
def test_bad_settings_name_the_field(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=field):
        call(Faults())
