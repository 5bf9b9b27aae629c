"""A real Kubernetes control plane on loopback: etcd + kube-apiserver.

Used by the tests (a pytest fixture) and by the local demo
(``djl-operator-kit controlplane``). It generates a throwaway PKI, starts both
processes on free ports, waits for ``/readyz``, writes an admin kubeconfig,
installs the CRDs, and stops everything it started. Child processes get
``PR_SET_PDEATHSIG`` so they die with us even if we are killed.

Binaries come from ``KUBEBUILDER_ASSETS`` when it holds them (the envtest
convention), else from ``scripts/build-control-plane.sh``, which builds them
from the upstream Go modules into a cache folder.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import datetime as dt
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from djl_operator import crd

# The kit's callers (tests, demo) find kubectl here too.
from djl_operator.invoke import kubectl_path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-control-plane.sh"


class ControlPlaneError(RuntimeError):
    pass


class ApiError(ControlPlaneError):
    """An API request answered with a status the caller did not expect; the message is the API server's."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.status = status
        # A failed request's body is a metav1.Status: its reason (AlreadyExists, NotFound, Invalid...)
        # and message are what kubectl would print.
        self.reason = body.get("reason", "") if isinstance(body, dict) else ""
        message = body.get("message", "") if isinstance(body, dict) else ""
        self.message = message or (body[:300].decode(errors="replace") if isinstance(body, bytes) else str(body))
        super().__init__(f"{method} {path}: HTTP {status}{' ' + self.reason if self.reason else ''}: {self.message}")


def find_binaries() -> Path:
    """The folder holding ``etcd`` and ``kube-apiserver``, building them if needed."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and all((Path(assets) / b).is_file() for b in ("etcd", "kube-apiserver")):
        return Path(assets)
    if not BUILD_SCRIPT.is_file():
        raise ControlPlaneError(
            "no control-plane binaries: set KUBEBUILDER_ASSETS to a folder with etcd and kube-apiserver "
            f"(e.g. from setup-envtest), or run from a source checkout with {BUILD_SCRIPT.name}"
        )
    result = subprocess.run([str(BUILD_SCRIPT)], check=False, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- PKI --------------------------------------------------------------------


@dataclass
class _Pki:
    ca_cert: bytes
    ca_key: Any
    server_cert: bytes
    server_key: bytes
    admin_cert: bytes
    admin_key: bytes
    sa_key: bytes
    sa_pub: bytes


def _generate_pki() -> _Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def pem_key(key: Any) -> bytes:
        return bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def new_key() -> Any:
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = new_key()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("djl-operator-local-ca"))
        .issuer_name(name("djl-operator-local-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(subject: x509.Name, usage: Any, sans: list[x509.GeneralName] | None) -> tuple[bytes, bytes]:
        key = new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), pem_key(key)

    server_cert, server_key = leaf(
        name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ],
    )
    admin_cert, admin_key = leaf(name("djl-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, None)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _Pki(
        ca_cert=ca_cert.public_bytes(serialization.Encoding.PEM),
        ca_key=ca_key,
        server_cert=server_cert,
        server_key=server_key,
        admin_cert=admin_cert,
        admin_key=admin_key,
        sa_key=pem_key(sa_key),
        sa_pub=sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the parent goes away.

    Not SIGTERM: etcd and kube-apiserver would get it at the same moment, and
    kube-apiserver's graceful shutdown hangs for good once etcd is gone. A
    throwaway control plane has nothing to save."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _kubeconfig(server: str, ca: bytes, user: dict[str, str], user_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca).decode()},
            }
        ],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": user_name, "context": {"cluster": "local", "user": user_name}}],
        "current-context": user_name,
    }


@dataclass
class ControlPlane:
    """etcd + kube-apiserver on loopback; use as a context manager or start()/stop()."""

    workdir: Path | None = None
    crd_paths: list[Path] = field(default_factory=crd.shipped_paths)
    startup_timeout: float = 90.0

    def __post_init__(self) -> None:
        self._owns_workdir = self.workdir is None
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="djl-controlplane-"))
        self._procs: list[subprocess.Popen[bytes]] = []
        self.apiserver_port = 0
        self.etcd_port = 0
        self._api_local = threading.local()  # one kept-alive admin connection per thread (request)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> ControlPlane:
        assert self.workdir is not None
        bins = find_binaries()
        pki = _generate_pki()
        certs = self.workdir / "pki"
        certs.mkdir(parents=True, exist_ok=True)
        for fname, data in {
            "ca.crt": pki.ca_cert,
            "server.crt": pki.server_cert,
            "server.key": pki.server_key,
            "sa.key": pki.sa_key,
            "sa.pub": pki.sa_pub,
        }.items():
            (certs / fname).write_bytes(data)
        self._ca = pki.ca_cert
        try:
            self._start_etcd(bins / "etcd")
            self._start_apiserver(bins / "kube-apiserver", certs)
            self.admin_kubeconfig = self.workdir / "admin.kubeconfig"
            self.admin_kubeconfig.write_text(
                yaml.safe_dump(
                    _kubeconfig(
                        self.server,
                        pki.ca_cert,
                        {
                            "client-certificate-data": base64.b64encode(pki.admin_cert).decode(),
                            "client-key-data": base64.b64encode(pki.admin_key).decode(),
                        },
                        "admin",
                    )
                )
            )
            self._admin_tls = (pki.admin_cert, pki.admin_key)
            self._wait_ready()
            self.install_crds()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # One at a time, newest first: kube-apiserver hangs in its shutdown while
        # etcd is going away too, but exits in about a second with etcd still up.
        deadline = time.monotonic() + 15
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        if self._owns_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    # -- processes -----------------------------------------------------------

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        log = open(self.workdir / log_name, "wb")  # noqa: SIM115 - lives as long as the process
        # Own session: a terminal's Ctrl-C reaches only us, and stop() shuts them down in order.
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
        log.close()
        self._procs.append(proc)
        return proc

    def _start_etcd(self, etcd: Path) -> None:
        assert self.workdir is not None
        self.etcd_port = free_port()
        peer_port = free_port()
        self._spawn(
            [
                str(etcd),
                "--data-dir",
                str(self.workdir / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            "etcd.log",
        )

    def _start_apiserver(self, apiserver: Path, certs: Path) -> None:
        self.apiserver_port = free_port()
        (certs / "client-ca.crt").write_bytes(self._ca)
        self._spawn(
            [
                str(apiserver),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # The endpoint reconciler refuses loopback addresses; envtest turns it off too.
                "--endpoint-reconciler-type=none",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={certs / 'server.crt'}",
                f"--tls-private-key-file={certs / 'server.key'}",
                f"--client-ca-file={certs / 'client-ca.crt'}",
                f"--service-account-key-file={certs / 'sa.pub'}",
                f"--service-account-signing-key-file={certs / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=false",
                "--enable-priority-and-fairness=false",
                # Periodic work nothing here reads, a third of an idle API server's CPU (measured:
                # 3.4 -> 2.6 CPU s a minute, and etcd 1.0 -> 0.7): object-count metrics (for the
                # priority-and-fairness estimates turned off above), the apiserver identity lease
                # (for peer proxying between API servers; this is the only one), profiling handlers.
                "--etcd-count-metric-poll-period=0",
                "--feature-gates=APIServerIdentity=false,UnknownVersionInteroperabilityProxy=false",
                "--profiling=false",
                "--v=1",
            ],
            "kube-apiserver.log",
        )

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.workdir is not None
        ctx = ssl.create_default_context(cadata=self._ca.decode())
        cert_file = self.workdir / "pki" / "admin.crt"
        key_file = self.workdir / "pki" / "admin.key"
        cert_file.write_bytes(self._admin_tls[0])
        key_file.write_bytes(self._admin_tls[1])
        ctx.load_cert_chain(str(cert_file), str(key_file))
        return ctx

    def _wait_ready(self) -> None:
        ctx = self._ssl_context()
        deadline = time.monotonic() + self.startup_timeout
        last_error = "not started"
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise ControlPlaneError(f"{proc.args!r} exited with {proc.returncode}; {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=ctx, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except Exception as exc:  # not up yet
                last_error = str(exc)
            time.sleep(0.25)
        raise ControlPlaneError(f"kube-apiserver not ready after {self.startup_timeout}s: {last_error}")

    def log_tail(self, lines: int = 20) -> str:
        assert self.workdir is not None
        out = []
        for name in ("etcd.log", "kube-apiserver.log"):
            path = self.workdir / name
            if path.exists():
                out.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    # -- the API as the admin ----------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200, 201, 202),
    ) -> tuple[int, Any]:
        """One API request as the admin over this thread's kept-alive connection.

        ``body`` goes as JSON unless it is already text (an apply patch's YAML). Returns the status
        and the parsed response; a status outside ``expect`` raises :class:`ApiError` with the API
        server's own message. For the tests' routine calls (namespaces, deletions, apply): starting
        kubectl costs ~50 ms of CPU, this about 1 ms, and on two cores three workers' calls add up.
        """
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data: bytes | None = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            conn: http.client.HTTPSConnection | None = getattr(self._api_local, "conn", None)
            reused = conn is not None
            if conn is None:
                host, port = self.server.removeprefix("https://").rsplit(":", 1)
                conn = http.client.HTTPSConnection(host, int(port), context=self._admin_ssl(), timeout=30)
                self._api_local.conn = conn
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._api_local.conn = None
                # The server may close an idle kept-alive connection: one fresh try (a write only
                # then: one that failed on a fresh connection may have been done, so it is not sent twice).
                if attempt == 2 or not (reused or method == "GET"):
                    raise
                continue
            parsed = (
                json.loads(raw) if raw and resp.getheader("Content-Type", "").startswith("application/json") else raw
            )
            if resp.status not in expect:
                raise ApiError(method, path, resp.status, parsed)
            return resp.status, parsed
        raise AssertionError("unreachable")

    def api_get(self, path: str) -> Any:
        """GET an API path as the admin over a kept-alive connection; None for a 404.

        For tests that poll status: starting kubectl costs ~70 ms of CPU, this about 1 ms, and
        on two cores the polls of three test workers add up.
        """
        status, body = self.request("GET", path, expect=(200, 404))
        return None if status == 404 else body

    def watch(self, path: str, query: dict[str, str], timeout: float) -> Iterator[dict[str, Any]]:
        """The watch events (``{"type": ..., "object": ...}``) of the collection at ``path`` as the admin,
        for at most ``timeout`` seconds; ``query`` picks where to start (``resourceVersion``) and what
        (``fieldSelector``). It ends early when the server ends the stream; an ``ERROR`` event (410 Gone:
        that version is too old) is yielded like any other, for the caller to list again.

        One HTTPS stream of its own (the kept-alive connection of :meth:`request` stays free): a test
        waiting on a resource wakes when it changes, instead of polling it with GETs.
        """
        deadline = time.monotonic() + timeout
        server_timeout = str(max(1, int(timeout) + 1))  # the server ends the stream too
        target = f"{path}?{urllib.parse.urlencode({**query, 'watch': '1', 'timeoutSeconds': server_timeout})}"
        host, port = self.server.removeprefix("https://").rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), context=self._admin_ssl(), timeout=max(timeout, 0.01))
        try:
            conn.request("GET", target, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                raw = resp.read()
                raise ApiError("GET", target, resp.status, json.loads(raw) if raw.startswith(b"{") else raw)
            while (remaining := deadline - time.monotonic()) > 0:
                assert conn.sock is not None
                conn.sock.settimeout(remaining)
                try:
                    line = resp.readline()
                except TimeoutError:
                    return
                if not line:
                    return  # the server ended the stream
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    def create_namespace(self, name: str, *, exist_ok: bool = False) -> None:
        """Create a namespace; one that exists already is an error unless ``exist_ok``."""
        self.request(
            "POST", "/api/v1/namespaces", {"metadata": {"name": name}}, expect=(201, 409) if exist_ok else (201,)
        )

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace without waiting for it to go; gone already is fine."""
        self.request("DELETE", f"/api/v1/namespaces/{name}", expect=(200, 202, 404))

    def _admin_ssl(self) -> ssl.SSLContext:
        ctx: ssl.SSLContext | None = getattr(self, "_admin_ssl_ctx", None)
        if ctx is None:
            ctx = self._admin_ssl_ctx = self._ssl_context()
        return ctx

    # -- kubectl -------------------------------------------------------------

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [kubectl_path(), f"--kubeconfig={kubeconfig or self.admin_kubeconfig}", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=120, check=False)
        if check and result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def install_crds(self) -> None:
        for path in self.crd_paths:
            self.kubectl("apply", "--server-side", "-f", str(path))
        names = [yaml.safe_load(path.read_text().split("\n---")[0])["metadata"]["name"] for path in self.crd_paths]
        self.wait_established(*names)

    def wait_established(self, *names: str, timeout: float = 60.0) -> None:
        """Wait until each CRD is Established.

        Right after a create, `kubectl wait` can fail at once ("status.conditions accessor error:
        <nil>") because the API server has not written the CRD's status yet: that is retried.
        """
        if not names:
            return
        deadline = time.monotonic() + timeout
        while True:
            left = max(1, int(deadline - time.monotonic()))
            crds = [f"crd/{name}" for name in names]
            result = self.kubectl("wait", "--for=condition=Established", f"--timeout={left}s", *crds, check=False)
            if result.returncode == 0:
                return
            if time.monotonic() >= deadline:
                raise ControlPlaneError(f"CRDs {', '.join(names)} not Established: {result.stderr.strip()}")
            time.sleep(0.2)

    def service_account_kubeconfig(self, namespace: str, name: str, duration: str = "24h") -> Path:
        """A kubeconfig authenticating as a ServiceAccount (so RBAC applies to it)."""
        assert self.workdir is not None
        # The namespace usually exists already (an API call: no kubectl process for that); the
        # ServiceAccount and its token are made the way a user would.
        self.create_namespace(namespace, exist_ok=True)
        self.kubectl("create", "serviceaccount", name, "-n", namespace, check=False)
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()
        path = self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        path.write_text(yaml.safe_dump(_kubeconfig(self.server, self._ca, {"token": token}, f"{namespace}-{name}")))
        return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djl-operator-kit controlplane", description=__doc__)
    parser.add_argument("--kubeconfig-out", type=Path, help="copy the admin kubeconfig here")
    args = parser.parse_args(argv)
    with ControlPlane() as cp:
        if args.kubeconfig_out:
            shutil.copy(cp.admin_kubeconfig, args.kubeconfig_out)
        print(f"kube-apiserver: {cp.server}")
        print(f"export KUBECONFIG={args.kubeconfig_out or cp.admin_kubeconfig}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                signal.pause()
    return 0
