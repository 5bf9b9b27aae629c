"""The local control plane: lifecycle, envtest convention, RBAC-bound ServiceAccounts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from djl_operator_kit import controlplane
from djl_operator_kit.controlplane import ControlPlane
from tests.plugins.controlplane import Kubectl


def test_kubebuilder_assets_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = controlplane.find_binaries()
    for binary in ("etcd", "kube-apiserver"):
        (tmp_path / binary).symlink_to(built / binary)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    assert controlplane.find_binaries() == tmp_path


def test_start_and_stop_leave_no_processes(tmp_path: Path) -> None:
    cp = ControlPlane(workdir=tmp_path / "cp")
    with cp:
        pids = cp.pids
        assert len(pids) == 2
        version = cp.kubectl("version", "-o", "json").stdout
        assert '"gitVersion": "v1.37' in version
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_service_account_is_bound_by_rbac(control_plane: ControlPlane, kubectl: Kubectl, namespace: str) -> None:
    sa = Kubectl(control_plane, control_plane.service_account_kubeconfig(namespace, "reader"))
    denied = sa.run("get", "djlendpoints", "-n", namespace, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    kubectl.run("create", "role", "read-djle", "-n", namespace, "--verb=get,list", "--resource=djlendpoints")
    kubectl.run(
        "create",
        "rolebinding",
        "read-djle",
        "-n",
        namespace,
        "--role=read-djle",
        f"--serviceaccount={namespace}:reader",
    )
    assert sa.run("get", "djlendpoints", "-n", namespace).returncode == 0
    still_denied = sa.run("get", "secrets", "-n", namespace, check=False)
    assert still_denied.returncode != 0 and "forbidden" in still_denied.stderr.lower()
