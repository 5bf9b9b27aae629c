"""Fault injection: delays, failing models, capacity errors, throttling, denials, 500s.

One :class:`Faults` object per emulator, shared by every request thread. Rules
are matched with shell-style globs (``fnmatch``) so a test can say
``fail_model_start(model_name="canary-*")``. Randomness is seeded, so a test
that throttles at ``rate=0.5, seed=1`` sees the same sequence every run.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from . import errors

# AWS's wording; the SageMaker SDK and our operator key on "CapacityError".
CAPACITY_REASON = (
    "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."
)
PING_FAILURE_REASON = (
    "The primary container for production variant {variant} did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)


@dataclass
class Delays:
    create: float = 0.0
    update: float = 0.0
    delete: float = 0.0
    rollback: float = 0.0
    # Wall seconds per second of a deployment guardrail wait (WaitIntervalInSeconds,
    # TerminationWaitInSeconds, MaximumExecutionTimeoutInSeconds); see EmulatorConfig.
    guardrail_time_scale: float = 1.0


@dataclass
class _Throttle:
    rate: float | None
    every: int | None
    operations: frozenset[str] | None
    limit: int | None
    rng: random.Random
    seen: int = 0
    fired: int = 0


@dataclass
class _ModelRule:
    model_name: str | None
    image: str | None
    reason: str | None


@dataclass
class _CapacityRule:
    instance_type: str | None
    reason: str


@dataclass
class _State:
    delays: Delays
    model_rules: list[_ModelRule] = field(default_factory=list)
    capacity_rules: list[_CapacityRule] = field(default_factory=list)
    throttle: _Throttle | None = None
    denied: set[str] = field(default_factory=set)
    internal: set[str] = field(default_factory=set)
    quotas: dict[str, int] = field(default_factory=dict)


def check_time_scale(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"guardrail_time_scale must be a number in (0, 1], got {value!r}")


def _glob(pattern: str | None, value: str | None) -> bool:
    return pattern is None or (value is not None and fnmatch.fnmatchcase(value, pattern))


class Faults:
    """Thread-safe fault rules. ``clear()`` restores the delays the emulator was configured with."""

    def __init__(self, delays: Delays | None = None) -> None:
        self._defaults = delays or Delays()
        self._lock = threading.Lock()
        self._state = _State(delays=Delays(**asdict(self._defaults)))

    # -- configuration (the admin API maps POST /_emulator/faults/<name> onto these) --

    def set(
        self,
        create_delay: float | None = None,
        update_delay: float | None = None,
        delete_delay: float | None = None,
        rollback_delay: float | None = None,
        guardrail_time_scale: float | None = None,
    ) -> None:
        """Change lifecycle delays (seconds) for operations started from now on; the guardrail time
        scale for the deployment waits under way (bakes, termination waits, counted from their start)
        and those to come, and the execution timeout of deployments started from now on."""
        new = {"create": create_delay, "update": update_delay, "delete": delete_delay, "rollback": rollback_delay}
        for name, value in new.items():
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{name}_delay must be a number >= 0, got {value!r}")
        if guardrail_time_scale is not None:
            check_time_scale(guardrail_time_scale)
        with self._lock:
            for name, value in new.items():
                if value is not None:
                    setattr(self._state.delays, name, float(value))
            if guardrail_time_scale is not None:
                self._state.delays.guardrail_time_scale = float(guardrail_time_scale)

    def fail_model_start(
        self, model_name: str | None = None, image: str | None = None, reason: str | None = None
    ) -> None:
        """Containers of matching models never pass /ping: creates fail, updates roll back."""
        if model_name is None and image is None:
            raise ValueError("fail_model_start needs model_name or image (globs allowed)")
        with self._lock:
            self._state.model_rules.append(_ModelRule(model_name, image, reason))

    def capacity_error(self, instance_type: str | None = None, reason: str = CAPACITY_REASON) -> None:
        """Deployments on matching instance types fail with capacity wording (None: all types)."""
        with self._lock:
            self._state.capacity_rules.append(_CapacityRule(instance_type, reason))

    def throttle(
        self,
        rate: float | None = None,
        seed: int = 0,
        every: int | None = None,
        operations: list[str] | None = None,
        limit: int | None = None,
    ) -> None:
        """Answer ``ThrottlingException``: with probability ``rate`` (seeded), or on every
        ``every``-th matching call; only ``operations`` if given (default: every SageMaker
        control-plane call); at most ``limit`` times if given. Replaces any earlier throttle."""
        if (rate is None) == (every is None):
            raise ValueError("throttle needs exactly one of rate (0..1) or every (>= 1)")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError(f"throttle rate must be within 0..1, got {rate!r}")
        if every is not None and every < 1:
            raise ValueError(f"throttle every must be >= 1, got {every!r}")
        ops = frozenset(operations) if operations else None
        with self._lock:
            self._state.throttle = _Throttle(rate, every, ops, limit, random.Random(seed))

    def deny(self, *operations: str) -> None:
        """Answer ``AccessDeniedException`` for these operations."""
        with self._lock:
            self._state.denied.update(operations)

    def internal_error(self, *operations: str) -> None:
        """Answer HTTP 500 ``InternalFailure`` for these operations."""
        with self._lock:
            self._state.internal.update(operations)

    def quota(self, instance_type: str, instances: int) -> None:
        """Account quota for endpoint instances of ``instance_type``: Create/UpdateEndpoint past it
        get ``ResourceLimitExceeded``."""
        if instances < 0:
            raise ValueError(f"quota instances must be >= 0, got {instances!r}")
        with self._lock:
            self._state.quotas[instance_type] = instances

    def clear(self) -> None:
        with self._lock:
            self._state = _State(delays=Delays(**asdict(self._defaults)))

    def snapshot(self) -> dict[str, Any]:
        """What is configured now (for the admin API and debugging)."""
        with self._lock:
            s = self._state
            throttle = None
            if s.throttle is not None:
                t = s.throttle
                throttle = {
                    "rate": t.rate,
                    "every": t.every,
                    "operations": sorted(t.operations) if t.operations else None,
                    "limit": t.limit,
                    "fired": t.fired,
                }
            return {
                "delays": asdict(s.delays),
                "fail_model_start": [asdict(r) for r in s.model_rules],
                "capacity_error": [asdict(r) for r in s.capacity_rules],
                "throttle": throttle,
                "deny": sorted(s.denied),
                "internal_error": sorted(s.internal),
                "quota": dict(s.quotas),
            }

    # -- queries used by the emulator --

    def delays(self) -> Delays:
        with self._lock:
            return Delays(**asdict(self._state.delays))

    def request_error(
        self,
        operation: str,
        resource_arn: str,
        account_id: str,
        control_plane: bool = True,
        action_prefix: str = "sagemaker",
        deniable: bool = True,
    ) -> errors.ApiError | None:
        """The error to answer instead of serving ``operation``, if any fault applies.

        ``control_plane=False`` (the runtime, the Tagging API, STS): a throttle without
        ``operations`` does not apply; name the operation to throttle it. ``action_prefix``
        is the IAM prefix an AccessDenied message names; ``deniable=False`` for actions IAM cannot
        deny (sts:GetCallerIdentity). The codes are SageMaker's; other
        services rename them (the Tagging API says ``ThrottledException``)."""
        with self._lock:
            s = self._state
            if self._throttled(operation, control_plane):
                return errors.throttled()
            if deniable and operation in s.denied:
                return errors.access_denied(operation, resource_arn, account_id, action_prefix)
            if operation in s.internal:
                return errors.internal_failure(operation)
        return None

    def _throttled(self, operation: str, control_plane: bool) -> bool:
        t = self._state.throttle
        if t is None:
            return False
        if t.operations is None and not control_plane:
            return False
        if t.operations is not None and operation not in t.operations:
            return False
        if t.limit is not None and t.fired >= t.limit:
            return False
        t.seen += 1
        hit = (t.seen % t.every == 0) if t.every is not None else t.rng.random() < (t.rate or 0.0)
        if hit:
            t.fired += 1
        return hit

    def model_start_failure(self, model_name: str, images: list[str], variant: str) -> str | None:
        """FailureReason if this model's container should fail to start, else None."""
        with self._lock:
            for rule in self._state.model_rules:
                name_ok = _glob(rule.model_name, model_name)
                image_ok = rule.image is None or any(_glob(rule.image, i) for i in images)
                if name_ok and image_ok:
                    return rule.reason or PING_FAILURE_REASON.format(variant=variant)
        return None

    def capacity_failure(self, instance_type: str | None) -> str | None:
        with self._lock:
            for rule in self._state.capacity_rules:
                if _glob(rule.instance_type, instance_type):
                    return rule.reason
        return None

    def instance_quota(self, instance_type: str) -> int | None:
        with self._lock:
            return self._state.quotas.get(instance_type)
