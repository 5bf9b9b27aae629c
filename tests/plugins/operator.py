"""The operator as a real process (``djl-operator run``) against the test control plane and emulator."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from djl_operator_kit import processes
from djl_operator_kit.controlplane import ControlPlane
from djl_operator_kit.emulator import Emulator, EmulatorConfig
from djl_operator_kit.hub import LocalHub
from tests.plugins.controlplane import Kubectl, make_namespace

T = TypeVar("T")

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
BUCKET = "djl-test-artifacts"
RESOURCES = "/apis/serving.djl-operator.io/v1alpha1"  # the DjlEndpoint API group and version
FIELD_MANAGER = "djl-e2e-tests"  # Cluster.apply's server-side apply


def wait_for(check: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.1, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail with the last value otherwise.

    A wait overruns what it waits for by half the interval on average, and an e2e test waits several
    times; a look is an in-process emulator read or a kept-alive GET, a millisecond or two. (Waits on
    a DjlEndpoint alone watch it instead: :meth:`Cluster.wait_object`.)"""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last value: {last!r}")


def wait_listed(
    control_plane: ControlPlane,
    collection: str,
    check: Callable[[dict[str, dict[str, Any]]], T | None],
    *,
    name: str | None = None,
    timeout: float = 60.0,
    what: str = "",
) -> T:
    """Wait until ``check`` of the objects in ``collection`` (by name; only ``name`` if given) returns
    something truthy, and return that; fail with the last value otherwise.

    A list, then a watch from its resourceVersion: ``check`` sees every change as the API server
    tells it, with no poll interval to overrun and no GET after GET while nothing changes. A watch
    that ends (its time, the server's, a 410 for a version too old) lists again.
    """
    deadline = time.monotonic() + timeout
    query = {"fieldSelector": f"metadata.name={name}"} if name else {}
    last: Any = None
    while True:
        _, listing = control_plane.request("GET", collection, query=query)
        objects = {item["metadata"]["name"]: item for item in listing["items"]}
        if last := check(objects):
            return last  # type: ignore[no-any-return]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last value: {last!r}")
        since = {**query, "resourceVersion": listing["metadata"]["resourceVersion"]}
        for event in control_plane.watch(collection, since, timeout=remaining):
            if event["type"] == "ERROR":
                break
            if event["type"] not in ("ADDED", "MODIFIED", "DELETED"):
                continue  # BOOKMARK
            changed = event["object"]
            if event["type"] == "DELETED":
                objects.pop(changed["metadata"]["name"], None)
            else:
                objects[changed["metadata"]["name"]] = changed
            if last := check(objects):
                return last  # type: ignore[no-any-return]


def endpoint_manifest(name: str, **spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"id": "sshleifer/tiny-random-bart", "task": "feature-extraction", "engine": "Python"},
        "image": {"framework": "djl-deepspeed", "version": "0.21.0"},
        "instance": {"type": "ml.g5.12xlarge", "count": 1},
        "timeouts": {"modelDataDownloadSeconds": 1800, "containerStartupHealthCheckSeconds": 3600},
        "aws": {"region": "us-east-1", "executionRoleArn": ROLE_ARN, "artifactBucket": BUCKET},
    }
    for path, value in spec_overrides.items():
        *parents, leaf = path.split("__")
        node = spec
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return {
        "apiVersion": "serving.djl-operator.io/v1alpha1",
        "kind": "DjlEndpoint",
        "metadata": {"name": name},
        "spec": spec,
    }


def apply_endpoint(control_plane: ControlPlane, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create or update a DjlEndpoint by server-side apply (an API call, not a kubectl process);
    returns it as stored.

    What the tests rely on from ``kubectl apply`` holds (tests/integration/test_controlplane.py): a
    field left out of a later apply is removed (this field manager owned it), an unknown field is
    refused (fieldValidation=Strict), an invalid manifest raises with the API server's message.
    ``force``: the test's manifest wins over a field someone changed since, as a client-side apply's does.
    """
    assert manifest["kind"] == "DjlEndpoint", "apply_endpoint is for DjlEndpoints; kubectl.apply for the rest"
    _, stored = control_plane.request(
        "PATCH",
        f"{RESOURCES}/namespaces/{namespace}/djlendpoints/{manifest['metadata']['name']}",
        yaml.safe_dump(manifest),
        content_type="application/apply-patch+yaml",
        query={"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict", "force": "true"},
    )
    body: dict[str, Any] = stored
    return body


class OperatorProcess:
    def __init__(
        self,
        control_plane: ControlPlane,
        env: dict[str, str],
        namespace: str,
        log_path: Path,
        kubeconfig: Path | None = None,
    ) -> None:
        self.env = {**os.environ, **env, "KUBECONFIG": str(kubeconfig or control_plane.admin_kubeconfig)}
        self.namespace = namespace
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_from = 0
        self.extra_args: list[str] = []
        # Which resources it serves, and how; tests/e2e/test_rbac.py runs it as deployed instead
        # (cluster-wide, peering).
        self.scope_args: list[str] = ["--standalone", "-n", namespace]

    def start(self) -> OperatorProcess:
        self.starts += 1
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        log.write(f"\n===== start {self.starts} =====\n".encode())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "djl_operator.cli", "run", *self.scope_args, *self.extra_args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, like a node dying."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        processes.stop(self.proc, timeout=15)

    def mark_log(self) -> None:
        """From now on :meth:`log` shows only what follows (the next test's part of a shared log)."""
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0

    def log(self) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(self._log_from)
            return log.read().decode(errors="replace")


class Cluster:
    """What an e2e test talks to: the namespace, kubectl, the emulator and the operator."""

    def __init__(
        self, kubectl: Kubectl, namespace: str, emulator: Any, operator: OperatorProcess, hub: LocalHub | None = None
    ) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.emulator = emulator
        self.operator = operator
        self.hub = hub  # the operator's HF_ENDPOINT (spec.model.snapshot)
        self.sagemaker = emulator.client("sagemaker")
        self.s3 = emulator.client("s3")

    def apply(self, manifest: dict[str, Any]) -> None:
        apply_endpoint(self.kubectl.cp, self.namespace, manifest)

    def get(self, name: str) -> dict[str, Any] | None:
        """The resource as the API server has it (None once it is gone); tests poll this, so it is an
        API GET over a kept-alive connection, not a kubectl process (tests of kubectl's own output call it)."""
        body: dict[str, Any] | None = self.kubectl.cp.api_get(
            f"{RESOURCES}/namespaces/{self.namespace}/djlendpoints/{name}"
        )
        return body

    def status(self, name: str) -> dict[str, Any]:
        body = self.get(name) or {}
        status: dict[str, Any] = body.get("status") or {}
        return status

    def condition(self, name: str, ctype: str) -> dict[str, Any]:
        return _condition(self.status(name), ctype)

    def wait_object(
        self, name: str, check: Callable[[dict[str, Any] | None], T | None], *, timeout: float = 60, what: str = ""
    ) -> T:
        """Wait until ``check`` of the resource as stored (None while there is none) is truthy, and return
        that: woken by each change the API server tells (:func:`wait_listed`), not by a poll."""
        collection = f"{RESOURCES}/namespaces/{self.namespace}/djlendpoints"
        return wait_listed(
            self.kubectl.cp, collection, lambda found: check(found.get(name)), name=name, timeout=timeout, what=what
        )

    def wait_ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def ready(body: dict[str, Any] | None) -> dict[str, Any] | None:
            if not body:
                return None
            status = body.get("status") or {}
            is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
            if is_ready and status.get("observedGeneration") == body["metadata"]["generation"]:
                return status
            return None

        try:
            return self.wait_object(name, ready, timeout=timeout, what=f"{name} Ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- operator log tail:\n{self.operator.log()[-4000:]}") from None

    def wait_condition(self, name: str, ctype: str, reason: str, timeout: float = 60) -> dict[str, Any]:
        def matches(body: dict[str, Any] | None) -> dict[str, Any] | None:
            cond = _condition((body or {}).get("status") or {}, ctype)
            return cond if cond.get("status") == "True" and cond.get("reason") == reason else None

        try:
            return self.wait_object(name, matches, timeout=timeout, what=f"{name} {ctype}={reason}")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nstatus: {self.status(name)}\n--- operator log tail:\n{self.operator.log()[-4000:]}"
            ) from None

    def delete(self, name: str, wait: bool = True, timeout: float = 60) -> None:
        self.kubectl.cp.request("DELETE", f"{RESOURCES}/namespaces/{self.namespace}/djlendpoints/{name}")
        if wait:
            self.wait_object(name, lambda body: body is None, timeout=timeout, what=f"{name} deleted")

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.kubectl.cp.api_get(f"/api/v1/namespaces/{self.namespace}/events")["items"]
        return [e for e in items if e["involvedObject"].get("name") == name]

    def wait_events(self, name: str, *reasons: str, timeout: float = 15) -> list[dict[str, Any]]:
        """The resource's events once there is one of each of ``reasons`` among them. The operator posts
        its events through kopf's queue, so one may land just after the status write it goes with
        (which a watch sees at once)."""

        def posted() -> list[dict[str, Any]] | None:
            events = self.events(name)
            return events if set(reasons) <= {e["reason"] for e in events} else None

        return wait_for(posted, timeout=timeout, what=f"{name}'s events {', '.join(reasons)}")

    def endpoint(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.sagemaker.describe_endpoint(EndpointName=name)
            return result
        except self.sagemaker.exceptions.ClientError:
            return None

    def model_names(self) -> list[str]:
        return sorted(m["ModelName"] for m in self.sagemaker.list_models(MaxResults=100)["Models"])

    def config_names(self) -> list[str]:
        configs = self.sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]
        return sorted(c["EndpointConfigName"] for c in configs)

    def endpoint_names(self) -> list[str]:
        return sorted(e["EndpointName"] for e in self.sagemaker.list_endpoints(MaxResults=100)["Endpoints"])

    def artifact_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET)
        return sorted(o["Key"] for o in listing.get("Contents", []))


# The operator signs its AWS calls with its own access key id, so the emulator's call log tells
# its calls from the tests' (tests/plugins/aws_calls.py and tests/e2e/test_iam_policy.py check the
# IAM policy against them).
OPERATOR_ACCESS_KEY = "djl-operator-e2e"


def _condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == ctype), {})


def delete_all(kubectl: Kubectl, namespace: str, timeout: float) -> list[str]:
    """Delete every DjlEndpoint of the namespace and wait (on a watch) for the finalizers to let them go;
    those still there after ``timeout`` seconds."""
    collection = f"{RESOURCES}/namespaces/{namespace}/djlendpoints"
    kubectl.cp.request("DELETE", collection, expect=(200, 404))
    with contextlib.suppress(AssertionError):  # timed out: what is left says so
        wait_listed(kubectl.cp, collection, lambda found: not found, timeout=timeout, what="every finalizer run")
    return _remaining(kubectl, namespace)


def _remaining(kubectl: Kubectl, namespace: str) -> list[str]:
    """The DjlEndpoints left in the namespace, named as ``kubectl get -o name`` names them."""
    listing = kubectl.cp.api_get(f"{RESOURCES}/namespaces/{namespace}/djlendpoints")
    names = [item["metadata"]["name"] for item in (listing or {}).get("items", [])]
    return [f"djlendpoint.serving.djl-operator.io/{name}" for name in names]


def clean_up(
    kubectl: Kubectl, namespace: str, *operators: OperatorProcess, stop: bool = True, timeout: int = 30
) -> None:
    """Let the finalizers run while the operators are up, then stop them and release what is left.

    A resource whose finalizer the operator did not remove fails the test (after it is released,
    so the namespace can still go): a stuck deletion is a defect, not something to clean up quietly.
    With no operator running, nothing can finalize: it is only released. ``stop=False`` leaves the
    operators running (they serve another namespace cleaned up next). API calls, not kubectl
    processes: every e2e test ends here.
    """
    cp = kubectl.cp
    collection = f"{RESOURCES}/namespaces/{namespace}/djlendpoints"
    running = any(o.proc and o.proc.poll() is None for o in operators)
    # Waiting for finalizers nobody runs would only sit out the timeout.
    stuck: list[str] = delete_all(kubectl, namespace, timeout) if running else []
    if not running:
        cp.request("DELETE", collection, expect=(200, 404))
    for operator in operators if stop else ():
        operator.stop()
    for resource in _remaining(kubectl, namespace):
        cp.request(
            "PATCH",
            f"{collection}/{resource.rsplit('/', 1)[1]}",
            {"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json",
            expect=(200, 404),
        )
    if stuck:
        logs = "\n".join(f"--- {o.log_path.name} tail:\n{o.log()[-3000:]}" for o in operators)
        pytest.fail(
            f"the operator did not remove the finalizer of {stuck} within {timeout} s of their deletion\n{logs}"
        )


MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def install_peering_crds(kubectl: Kubectl) -> None:
    """kopf's peering CRDs: the operator base holds a ClusterKopfPeering, so they go first."""
    kubectl.run("apply", "--server-side", "-f", str(MANIFESTS / "crds" / "kopf-peering.yaml"))
    kubectl.cp.wait_established("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")


OPERATOR_ENV = {
    "AWS_ACCESS_KEY_ID": OPERATOR_ACCESS_KEY,
    "DJL_OPERATOR_POLL_SECONDS": "0.5",
    "DJL_OPERATOR_RESYNC_SECONDS": "2",
    "DJL_OPERATOR_CAPACITY_BACKOFF_SECONDS": "3",
    "DJL_OPERATOR_ACCESS_DENIED_BACKOFF_SECONDS": "1",
    "DJL_OPERATOR_TRANSIENT_BACKOFF_SECONDS": "0.5",
    "DJL_OPERATOR_SNAPSHOT_PART_MIB": "5",  # S3's smallest part: a few MiB make a multipart upload
}


@dataclass
class ModuleWorld:
    """What the tests of one module share: an emulator, a hub and one operator serving every
    namespace named ``e-*`` (each test gets its own). Starting an operator costs about two seconds
    of CPU; once per module instead of per test keeps the e2e tier within two cores."""

    emulator: Emulator
    hub: LocalHub
    operator: OperatorProcess
    baseline: tuple[dict[str, str], list[str], list[str]]

    def fresh(self) -> None:
        """A clean slate for the next test: the operator as started (restarted only if a test stopped
        or reconfigured it) and an empty emulator and hub at the same URLs."""
        op = self.operator
        env, scope, extra = self.baseline
        running = op.proc is not None and op.proc.poll() is None
        if not running or (op.env, op.scope_args, op.extra_args) != (env, scope, extra):
            op.stop()
            op.env, op.scope_args, op.extra_args = dict(env), list(scope), list(extra)
            op.start()
        self.emulator.reset()
        self.hub.reset()
        self.emulator.client("s3").create_bucket(Bucket=BUCKET)
        op.mark_log()


MODULE_NAMESPACES = "e-*"


@pytest.fixture(scope="module")
def module_world(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleWorld]:
    emulator = Emulator(EmulatorConfig()).start()
    hub = LocalHub().start()
    env = {**emulator.env, **OPERATOR_ENV, "HF_ENDPOINT": hub.url}
    operator = OperatorProcess(control_plane, env, MODULE_NAMESPACES, tmp_path_factory.mktemp("e2e") / "operator.log")
    world = ModuleWorld(emulator, hub, operator, (dict(operator.env), list(operator.scope_args), []))
    operator.start()
    try:
        yield world
    finally:
        operator.stop()
        hub.stop()
        emulator.stop()


@pytest.fixture
def cluster(module_world: ModuleWorld, kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A namespace of this test's own, served by the module's operator, with a clean emulator and hub."""
    module_world.fresh()
    namespace = make_namespace(kubectl, request, prefix="e")
    try:
        yield Cluster(kubectl, namespace, module_world.emulator, module_world.operator, module_world.hub)
    finally:
        # Let the finalizers run while the operator is still up (it stays up for the next test).
        clean_up(kubectl, namespace, module_world.operator, stop=False)
        kubectl.cp.delete_namespace(namespace)
