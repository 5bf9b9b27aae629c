"""The e2e harness itself: a deletion the operator never finishes fails the test that caused it."""

from __future__ import annotations

import pytest

from tests.plugins.operator import Cluster, clean_up, endpoint_manifest


def test_clean_up_fails_a_test_whose_finalizer_stays(cluster: Cluster) -> None:
    cluster.apply(endpoint_manifest("stuck"))
    cluster.wait_ready("stuck")
    cluster.emulator.faults.deny("DeleteEndpoint")  # the finalizer cannot finish: AccessDenied, retried

    with pytest.raises(pytest.fail.Exception, match=r"did not remove the finalizer of \['djlendpoint.*/stuck'\]"):
        clean_up(cluster.kubectl, cluster.namespace, cluster.operator, timeout=3)

    # It was released all the same, so the namespace can go.
    body = cluster.get("stuck")
    assert body is None, body and body["metadata"]
    cluster.emulator.faults.clear()


def test_this_module_is_one_xdist_unit(request: pytest.FixtureRequest) -> None:
    """Under ``make test`` (``--dist loadgroup``) an e2e module runs on one worker, so its operator starts
    once: the worker reports each test's group as an ``@<group>`` suffix of its node id, which
    tests/conftest.py writes (pytest 9.2 dropped the one xdist writes, and nothing failed then)."""
    if not request.config.getoption("loadgroup", default=False):
        pytest.skip("not run by xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@tests/e2e/test_harness.py"), request.node.nodeid
