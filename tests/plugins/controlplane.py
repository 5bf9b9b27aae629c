"""A real kube-apiserver + etcd for the whole test session."""

from __future__ import annotations

import hashlib
import itertools
import json
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from djl_operator_kit.controlplane import ControlPlane


class Kubectl:
    """kubectl bound to one kubeconfig, returning parsed results."""

    def __init__(self, control_plane: ControlPlane, kubeconfig: Path | None = None) -> None:
        self.cp = control_plane
        self.kubeconfig = kubeconfig

    def run(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.cp.kubectl(*args, kubeconfig=self.kubeconfig, check=check, input=input)

    def apply(
        self, manifest: dict[str, Any] | str, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.run("apply", "--validate=strict", *extra, "-f", "-", input=text, check=check)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(workdir=tmp_path_factory.mktemp("controlplane"))
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    return Kubectl(control_plane)


_namespaces_made = itertools.count(1)
_DNS_LABEL = set(string.ascii_lowercase + string.digits + "-")


def make_namespace(kubectl: Kubectl, request: pytest.FixtureRequest, prefix: str = "t") -> str:
    """Creates a namespace named after the test: ``<prefix>-<test name>-<digest>-<n>``.

    The digest (of the node id) tells parametrized cases apart to a reader; the counter makes the
    name unique in this process, which owns its control plane: a name seen before may still be
    terminating (a hash alone collided between two cases of one test).
    """
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:5]
    test = "".join(c if c in _DNS_LABEL else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"{prefix}-{test}-{digest}-{next(_namespaces_made)}"  # at most 1+1+40+1+5+1+digits < 63
    kubectl.cp.create_namespace(name)  # (an API call, not a kubectl process)
    return name


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = make_namespace(kubectl, request)
    yield name
    kubectl.cp.delete_namespace(name)
