"""Users validate DjlEndpoint manifests with kubeconform in CI: the schema we
ship (schemas/, CRDs-catalog layout) works with a real kubeconform built from
its Go module (scripts/build-kubeconform.sh), with the command line a user
writes:

    kubeconform -schema-location default \\
      -schema-location 'schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json' -strict

``default`` is kubeconform's schema repository for built-in kinds on GitHub;
it has no DjlEndpoint and answers 404, so kubeconform moves on to ours. The
tests run offline, so a local HTTPS proxy gives that same 404 (the requests it
saw prove the command consulted ``default`` first).
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import hostile_corpus as corpus

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
SCHEMA_LOCATION = "schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
DEFAULT_HOST = "raw.githubusercontent.com"


@pytest.fixture(scope="module")
def kubeconform() -> str:
    built = subprocess.run(
        [str(REPO / "scripts" / "build-kubeconform.sh")], capture_output=True, text=True, check=True, timeout=600
    )
    return built.stdout.strip().splitlines()[-1]


def _self_signed(workdir: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEFAULT_HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DEFAULT_HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "proxy.crt", workdir / "proxy.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class NotFoundProxy:
    """An HTTPS proxy that answers every request through it with 404, recording the paths."""

    def __init__(self, workdir: Path) -> None:
        self.cert, key = _self_signed(workdir)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(self.cert, key)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.paths: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_head(sock: Any) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = self._read_head(conn)
            if not head.startswith(b"CONNECT "):
                return
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            try:
                with self.tls.wrap_socket(conn, server_side=True) as tunnel:
                    request = self._read_head(tunnel).decode("latin-1")
                    self.paths.append(request.split(" ")[1] if " " in request else request)
                    tunnel.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except (ssl.SSLError, OSError):
                return

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotFoundProxy]:
    server = NotFoundProxy(tmp_path_factory.mktemp("proxy"))
    yield server
    server.close()


def _validate(kubeconform: str, proxy: NotFoundProxy, *paths: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
        "https_proxy": f"http://127.0.0.1:{proxy.port}",
        "SSL_CERT_FILE": str(proxy.cert),
        "NO_PROXY": "",
        "no_proxy": "",
    }
    return subprocess.run(
        [kubeconform, "-schema-location", "default", "-schema-location", SCHEMA_LOCATION, "-strict", "-summary",
         *map(str, paths)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_examples_validate(kubeconform: str, proxy: NotFoundProxy) -> None:
    result = _validate(kubeconform, proxy, *EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Valid: {len(EXAMPLES)}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout
    # kubeconform did look in its default location first (and got the 404 GitHub gives).
    assert any("djlendpoint" in path for path in proxy.paths), proxy.paths


BAD = [
    ("s3-dot-dot", "spec.model.id", "s3://bucket/../../secret/", "/spec/model/id"),
    ("revision-newline", "spec.model.revision", "main\noption.trust_remote_code=true", "/spec/model/revision"),
    ("property-key", "spec.model.properties", {"bad key": "x"}, "/spec/model/properties"),
    ("property-value-newline", "spec.model.properties", {"option.x": "a\nengine=MPI"}, "/spec/model/properties"),
    ("requirement-comment", "spec.model.requirements", ["numpy # x"], "/spec/model/requirements/0"),
    ("unknown-field", "spec.model.replicas", 3, "/spec/model"),
    ("count-zero", "spec.instance.count", 0, "/spec/instance/count"),
    ("too-many-tags", "spec.aws.tags", {f"t{i}": "v" for i in range(41)}, "/spec/aws/tags"),
]


@pytest.mark.parametrize(("path", "value", "pointer"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_manifests_fail_naming_the_field(
    kubeconform: str, proxy: NotFoundProxy, tmp_path: Path, path: str, value: Any, pointer: str
) -> None:
    manifest = copy.deepcopy(corpus.VALID)
    *parents, leaf = path.split(".")
    node = manifest
    for key in parents:
        node = node[key]
    node[leaf] = value
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(manifest))
    result = _validate(kubeconform, proxy, file)
    assert result.returncode != 0
    assert "Invalid: 1" in result.stdout and pointer in result.stdout, result.stdout + result.stderr
