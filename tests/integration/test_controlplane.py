"""The local control plane: lifecycle, envtest convention, RBAC-bound ServiceAccounts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from djl_operator_kit import controlplane
from djl_operator_kit.controlplane import ControlPlane
from tests.plugins.controlplane import Kubectl
from tests.plugins.operator import RESOURCES, apply_endpoint, endpoint_manifest


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


def test_request_speaks_the_api_on_one_kept_alive_connection(control_plane: ControlPlane, namespace: str) -> None:
    cp = control_plane
    maps = f"/api/v1/namespaces/{namespace}/configmaps"
    status, made = cp.request("POST", maps, {"metadata": {"name": "one", "labels": {"k": "v"}}, "data": {"a": "1"}})
    assert status == 201 and made["metadata"]["name"] == "one" and made["data"] == {"a": "1"}
    conn = cp._api_local.conn

    # A status the caller did not expect raises with the API server's own reason and message.
    with pytest.raises(
        controlplane.ApiError, match=r'POST .*: HTTP 409 AlreadyExists: configmaps "one" already exists'
    ):
        cp.request("POST", maps, {"metadata": {"name": "one"}})
    status, _ = cp.request("POST", maps, {"metadata": {"name": "one"}}, expect=(201, 409))
    assert status == 409

    # Query parameters; a merge patch; api_get is a GET through it (None for a 404).
    cp.request("POST", maps, {"metadata": {"name": "two"}})
    _, listing = cp.request("GET", maps, query={"labelSelector": "k=v"})
    assert [m["metadata"]["name"] for m in listing["items"]] == ["one"]
    cp.request("PATCH", f"{maps}/one", {"data": {"a": None, "b": "2"}}, content_type="application/merge-patch+json")
    assert cp.api_get(f"{maps}/one")["data"] == {"b": "2"}
    assert cp.api_get(f"{maps}/none") is None
    with pytest.raises(controlplane.ApiError) as gone:
        cp.request("DELETE", f"{maps}/none")
    assert (gone.value.status, gone.value.reason) == (404, "NotFound")
    assert cp._api_local.conn is conn  # every call above on the one connection

    # The server closing the idle connection costs one fresh try, not an error.
    conn.sock.close()
    assert cp.api_get(f"{maps}/two")["metadata"]["name"] == "two"
    assert cp._api_local.conn is not conn


def test_apply_endpoint_removes_refuses_and_explains_like_kubectl_apply(
    control_plane: ControlPlane, namespace: str
) -> None:
    """What the e2e tests' Cluster.apply (a server-side apply) must keep from ``kubectl apply``."""
    cp = control_plane
    stored = apply_endpoint(cp, namespace, endpoint_manifest("applied", deletionPolicy="Retain", model__revision="v1"))
    assert (stored["spec"]["deletionPolicy"], stored["spec"]["model"]["revision"]) == ("Retain", "v1")
    # Left out of the next apply: removed (deletionPolicy back to its default).
    stored = apply_endpoint(cp, namespace, endpoint_manifest("applied"))
    assert stored["spec"]["deletionPolicy"] == "Delete" and "revision" not in stored["spec"]["model"]
    assert stored["metadata"]["generation"] == 2
    # (An apply answers an unknown field with HTTP 500, kubectl's client-side apply with 400 "unknown field".)
    with pytest.raises(controlplane.ApiError, match=r"\.spec\.bogus: field not declared in schema"):
        apply_endpoint(cp, namespace, endpoint_manifest("applied", bogus=1))
    with pytest.raises(controlplane.ApiError, match=r"HTTP 422 Invalid: .*spec\.instance\.count"):
        apply_endpoint(cp, namespace, endpoint_manifest("applied", instance__count=0))
    assert cp.api_get(f"{RESOURCES}/namespaces/{namespace}/djlendpoints/applied")["metadata"]["generation"] == 2
