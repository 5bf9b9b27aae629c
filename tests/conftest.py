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


# tryfirst: xdist's worker reads the xdist_group marks in its own hook of this name (it appends the group
# to each node id), and that plugin registers after this conftest, so it would otherwise run first and
# never see the marks added here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order and group the suite for ``make test``'s xdist workers (``--dist loadgroup``).

    Each end-to-end module runs on one worker as a unit, so its one operator (tests/plugins/operator.py)
    starts once; so does each integration module with a module-scoped fixture, so its model server,
    emulator or rendered chart is set up once rather than on every worker that runs one of its tests.
    A test marked ``slow`` is a unit of its own. Longest first: slow tests, then end-to-end modules, then
    integration modules (grouped ones larger first), then the many short unit tests fill in around them,
    which keeps the run close to its total work divided by the workers.
    """

    def tier(item: pytest.Item) -> str:
        return item.nodeid.replace("\\", "/").split("/")[1] if "/" in item.nodeid else ""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("slow"):
            return 0
        return {"e2e": 1, "integration": 2}.get(tier(item), 3)

    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    def uses_module_fixture(item: pytest.Item) -> bool:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        return any(d.scope == "module" for chain in defs for d in chain)

    # Integration modules whose tests share a module-scoped fixture (a model server, an emulator, a
    # rendered chart): one unit, so it is set up once. The rest stay one test a unit, to fill in evenly.
    shared = {module(item) for item in items if rank(item) == 2 and uses_module_fixture(item)}
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid))
        elif rank(item) == 1 or (rank(item) == 2 and module(item) in shared):
            item.add_marker(pytest.mark.xdist_group(module(item)))
    # Stable: each module's tests stay in their order; the larger grouped modules go first.
    module_sizes: dict[str, int] = {}
    for item in items:
        module_sizes[module(item)] = module_sizes.get(module(item), 0) + 1
    items.sort(
        key=lambda item: (rank(item), -module_sizes[module(item)] if item.get_closest_marker("xdist_group") else 0)
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Make ``--dist loadgroup`` group again on this pytest.

    xdist's worker tells the controller each test's group by appending ``@<group>`` to its node id,
    writing ``item._nodeid``; pytest 9.2 takes the id from ``item._id`` instead, so the suffix is lost
    and every test is scheduled alone (each end-to-end module's operator then starts on every worker;
    pytest-dev/pytest-xdist#1386). Until xdist writes the structured id itself, this does, after xdist's
    modifyitems and before its collection_finish reports the ids (tryfirst); nothing where the suffix is
    there already.
    """
    if not session.config.getoption("loadgroup", default=False):
        return
    for item in session.items:
        groups = sorted(
            {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
        )
        suffix = "@" + "_".join(groups)
        node_id = getattr(item, "_id", None)
        if groups and node_id is not None and not item.nodeid.endswith(suffix):
            item._id = type(node_id).parse(item.nodeid + suffix)
