"""Every AWS call the operator process makes in any test must be allowed by its IAM policy.

The operator signs with its own access key id (``OPERATOR_ACCESS_KEY``) and the emulator
records that principal on every call, so after each test that had an ``emulator`` (the
``cluster`` fixture's included) its operator calls are checked against
manifests/iam/operator-policy.json: a call the policy does not allow fails that test, in any
order and on any xdist worker. They are read after the test's teardown, so the finalizer's
deletions count too. tests/e2e/test_iam_policy.py checks the other direction (nothing in the
policy goes unused) with a lifecycle of its own.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.plugins.iam import needed, policy_actions
from tests.plugins.operator import OPERATOR_ACCESS_KEY


@dataclass
class OperatorCalls:
    # (service, operation) -> node ids of the tests that saw the operator make that call
    seen: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def add(self, test_id: str, emulator: Any) -> None:
        for call in emulator.calls():
            if call.principal == OPERATOR_ACCESS_KEY:
                self.seen.setdefault((call.service, call.operation), set()).add(test_id)

    def operations(self) -> set[tuple[str, str]]:
        return set(self.seen)

    def tests(self) -> set[str]:
        return set().union(*self.seen.values()) if self.seen else set()


OPERATOR_CALLS = OperatorCalls()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    funcargs = getattr(item, "funcargs", None) or {}
    # The e2e ``cluster`` fixture shares one emulator per module, reset before each test.
    emulator = funcargs.get("emulator") or getattr(funcargs.get("cluster"), "emulator", None)
    try:
        return (yield)
    finally:
        # The emulator's call log outlives emulator.stop(), so reading it after teardown is safe.
        if emulator is not None and hasattr(emulator, "calls"):
            OPERATOR_CALLS.add(item.nodeid, emulator)
            ours = {(c.service, c.operation) for c in emulator.calls() if c.principal == OPERATOR_ACCESS_KEY}
            missing = needed(ours) - policy_actions()
            assert not missing, (
                f"the operator called AWS with actions its IAM policy does not allow: {sorted(missing)} "
                f"(calls: {sorted(ours)}); add them to manifests/iam/operator-policy.json"
            )
