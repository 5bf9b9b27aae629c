"""Shared test setup: every test runs offline against real local parts."""

import os

import pytest

# Nothing in the tests may reach a model hub or a real AWS account.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)
# The operator processes the tests start read their policy from here.
os.environ.setdefault("DJL_OPERATOR_POLICY_FILE", os.path.join(os.path.dirname(__file__), "operator-policy.yaml"))

pytest_plugins = [
    "tests.plugins.controlplane",
    "tests.plugins.emulator",
    "tests.plugins.models",
    "tests.plugins.operator",
    "tests.plugins.aws_calls",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order and group the suite for ``make test``'s xdist workers (``--dist loadgroup``).

    Each end-to-end module runs on one worker as a unit, so its one operator (tests/plugins/operator.py)
    starts once; a test marked ``slow`` is a unit of its own and, like the end-to-end modules, goes
    before the many short tests, so the long ones start at once on separate workers and the short ones
    fill in around them (longest first keeps the run close to its total work divided by the workers).
    """

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("slow"):
            return 0
        return 1 if "/e2e/" in item.nodeid.replace("\\", "/") else 2

    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid))
        elif rank(item) == 1:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    # Stable: each module's tests stay in their order; the larger end-to-end modules go first.
    module_sizes: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        module_sizes[module] = module_sizes.get(module, 0) + 1
    items.sort(key=lambda item: (rank(item), -module_sizes[item.nodeid.split("::")[0]] if rank(item) == 1 else 0))
