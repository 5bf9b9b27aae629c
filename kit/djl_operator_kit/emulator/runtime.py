"""InvokeEndpoint: run an endpoint's real artifact behind the SageMaker container contract.

For each (endpoint, ModelDataUrl) the first invocation fetches the tarball from
the emulator's S3, extracts it to a temp dir and starts
``python -m djl_operator.cli serve <dir> --port <N>`` (the model's container
``Environment`` is passed through, as SageMaker does); it then waits for
``GET /ping`` to answer 200 and forwards ``POST /invocations``. Servers are cached
and all stopped on shutdown. A non-2xx answer from the model becomes AWS's
``ModelError`` (HTTP 424 with ``OriginalStatusCode``/``OriginalMessage``).

Like DJL Serving in the real container, an ``option.model_id`` that names an
``s3://`` prefix is downloaded (from the emulator's S3) before the model starts,
and the served serving.properties points at the local copy: the model template
itself refuses S3 ids, because in AWS the host, not the handler, fetches them.

A container with ``ModelDataSource`` instead of ``ModelDataUrl`` gets its /opt/ml/model
materialized the way the S3ModelDataSource reference describes (S3Prefix: every object under
the prefix at its key less the prefix; S3Object: the object under its last key part, or
untarred with Gzip), and each ``AdditionalModelDataSources`` channel likewise under
``additional-model-data-sources/<ChannelName>/`` beside it. An ``option.model_id`` naming a
container path (``/opt/ml/model...``, ``/opt/ml/additional-model-data-sources/...``) is mapped
to the local directory. With ``EnableNetworkIsolation`` the server gets no way to the Hub
(``HF_ENDPOINT`` removed, ``HF_HUB_OFFLINE=1``) and an ``s3://`` model id fails to load, as the
isolated container could not download it.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import importlib.util
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from djl_operator_kit import processes
from djl_operator_kit.serving.artifact import PROPERTIES_FILE, parse_properties
from djl_operator_kit.serving.forkserver import ForkServer

from .errors import ApiError
from .sagemaker import MODEL_CHANNEL, RuntimeTarget

log = logging.getLogger(__name__)

SERVE_MODULE = "djl_operator_kit.serving.server"
INVOKE_TIMEOUT_S = 60.0  # AWS's InvokeEndpoint limit for real-time endpoints

MODEL_ID_KEY = "option.model_id"
CONTAINER_MODEL_DIR = "/opt/ml/model"
CONTAINER_CHANNELS_DIR = "/opt/ml/additional-model-data-sources"
# What an isolated container is left without: the Hub (the local Hub's address) and its downloads.
ISOLATED_DROP = ("HF_ENDPOINT",)
ISOLATED_SET = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

# (bucket, key, destination file) -> downloads the object
Fetch = Callable[[str, str, Path], None]
# (bucket, prefix) -> the keys of every object under the prefix
ListKeys = Callable[[str, str], list[str]]


def _container_headers(content_type: str | None, accept: str | None, custom_attributes: str | None) -> dict[str, str]:
    """The headers SageMaker forwards to the container's /invocations."""
    headers = {"Content-Type": content_type or "application/octet-stream"}
    if accept:
        headers["Accept"] = accept
    if custom_attributes:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
    return headers


@dataclass(frozen=True)
class Invocation:
    status: int
    content_type: str
    body: bytes


# What `ps -e`, `top` and `pgrep` call a model server (a fork server's child keeps its command line).
SERVER_PROCESS_NAME = "djl-serve"


@dataclass
class _ModelServer:
    process: processes.Child
    port: int
    workdir: Path
    log_path: Path
    inflight: int = 0  # invocations being answered now

    def log_tail(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def _internal_dependency(message: str) -> ApiError:
    # 530 is not retried by botocore, so a missing piece fails fast and says what it is.
    return ApiError("InternalDependencyException", message, 530)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")  # refuses absolute paths and links out of dest


def split_s3_prefix(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b/")``: a model id names a folder, so the
    prefix ends with ``/`` (``a/b`` must not also pick up ``a/bc/...``)."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket:
        raise ValueError(f"{url!r} is not an s3://bucket[/prefix] URL")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def relative_key(key: str, prefix: str) -> Path | None:
    """Where object ``key`` lands under the download folder; None for folder markers
    and for keys that would escape it (``..``, absolute parts)."""
    rest = key[len(prefix) :] if key.startswith(prefix) else None
    if not rest or rest.endswith("/"):
        return None
    parts = rest.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    return Path(*parts)


def with_property(text: str, key: str, value: str) -> str:
    """serving.properties ``text`` with ``key`` set to ``value`` (replacing every line
    that sets it, keeping comments and the order of everything else)."""
    lines, replaced = [], False
    for raw in text.splitlines():
        line = raw.strip()
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if line and line[0] not in "#!" and cut > 0 and line[:cut].strip() == key:
            if not replaced:
                lines.append(f"{key}={value}")
                replaced = True
            continue
        lines.append(raw)
    if not replaced:
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def local_path(container_path: str, model_dir: Path, channels_dir: Path) -> Path | None:
    """Where a container path (/opt/ml/model..., /opt/ml/additional-model-data-sources/<channel>...)
    is materialized locally; None for anything else or a path that would leave those folders."""
    for root, local in ((CONTAINER_MODEL_DIR, model_dir), (CONTAINER_CHANNELS_DIR, channels_dir)):
        if container_path.rstrip("/") == root:
            return local
        if container_path.startswith(root + "/"):
            parts = [p for p in container_path[len(root) + 1 :].split("/") if p]
            if any(p in (".", "..") for p in parts):
                return None
            return local.joinpath(*parts)
    return None


def _properties_file(model_dir: Path) -> Path | None:
    """serving.properties at the top of the artifact or in its single top-level folder
    (where `serve` and DJL look for it too)."""
    if (model_dir / PROPERTIES_FILE).is_file():
        return model_dir / PROPERTIES_FILE
    children = [p for p in model_dir.iterdir() if p.is_dir()] if model_dir.is_dir() else []
    if len(children) == 1 and (children[0] / PROPERTIES_FILE).is_file():
        return children[0] / PROPERTIES_FILE
    return None


def model_error(endpoint: str, region: str, account_id: str, status: int, message: str) -> ApiError:
    kind = "client" if 400 <= status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    return ApiError(
        "ModelError",
        f'Received {kind} error ({status}) from primary with message "{message}". See '
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group="
        f"{log_group} in account {account_id} for more information.",
        424,
        {
            "OriginalStatusCode": status,
            "OriginalMessage": message,
            "LogStreamArn": f"arn:aws:logs:{region}:{account_id}:log-group:{log_group}",
        },
    )


class ModelServers:
    """One serving subprocess per (endpoint, model deployment); thread-safe."""

    def __init__(
        self,
        fetch: Fetch,
        region: str,
        account_id: str,
        start_timeout: float = 120.0,
        list_keys: ListKeys | None = None,
    ) -> None:
        self._fetch = fetch
        self._list_keys = list_keys
        self._region, self._account_id = region, account_id
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._servers: dict[tuple[str, str], _ModelServer] = {}
        self._starting: dict[tuple[str, str], threading.Lock] = {}
        self._pending: set[tuple[str, str]] = set()  # warmed for an update, not yet invoked
        self._retiring: list[_ModelServer] = []  # an old fleet answering its last invocations
        self._idle = threading.Condition(self._lock)
        self._closing = threading.Event()

    def invoke(
        self,
        target: RuntimeTarget,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None = None,
    ) -> Invocation:
        server = self._server_for(target, use=True)
        headers = _container_headers(content_type, accept, custom_attributes)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=INVOKE_TIMEOUT_S)
        try:
            conn.request("POST", "/invocations", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            result = Invocation(
                response.status, response.getheader("Content-Type") or "application/octet-stream", payload
            )
        except OSError as exc:
            raise model_error(
                target.endpoint_name,
                self._region,
                self._account_id,
                500,
                f"model server unreachable: {exc}; log tail: {server.log_tail(500)}",
            ) from exc
        finally:
            conn.close()
            self._done(server)
        if not 200 <= result.status < 300:
            raise model_error(
                target.endpoint_name,
                self._region,
                self._account_id,
                result.status,
                payload.decode("utf-8", errors="replace"),
            )
        return result

    def invoke_stream(
        self,
        target: RuntimeTarget,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None = None,
    ) -> tuple[str, Iterator[bytes]]:
        """InvokeEndpointWithResponseStream's half: the container's content type and its body's
        bytes as they arrive (SageMaker forwards each read as one PayloadPart). A non-2xx
        answer before the stream begins is a ModelError, as for InvokeEndpoint."""
        server = self._server_for(target, use=True)
        headers = _container_headers(content_type, accept, custom_attributes)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=INVOKE_TIMEOUT_S)
        try:
            conn.request("POST", "/invocations", body=body, headers=headers)
            response = conn.getresponse()
        except OSError as exc:
            conn.close()
            self._done(server)
            raise model_error(
                target.endpoint_name, self._region, self._account_id, 500, f"model server unreachable: {exc}"
            ) from exc
        if not 200 <= response.status < 300:
            payload = response.read()
            conn.close()
            self._done(server)
            raise model_error(
                target.endpoint_name,
                self._region,
                self._account_id,
                response.status,
                payload.decode("utf-8", errors="replace"),
            )

        def chunks() -> Iterator[bytes]:
            try:
                while True:
                    data = response.read1(64 * 1024)
                    if not data:
                        return
                    yield data
            finally:
                conn.close()
                self._done(server)

        return response.getheader("Content-Type") or "application/octet-stream", chunks()

    def serving(self, endpoint_name: str) -> bool:
        """Whether a model server runs for this endpoint (it was invoked, so someone is calling it)."""
        with self._lock:
            return any(k[0] == endpoint_name.lower() and s.process.poll() is None for k, s in self._servers.items())

    def warm(self, target: RuntimeTarget) -> None:
        """Start (and wait for) the server ``target`` needs, next to the ones serving now.

        The blue/green half of an update: the new fleet comes up while the old one keeps
        answering; the first invocation routed to the new target then finds it warm and
        retires the old servers. Failures are left for that invocation to report."""
        key = self._key(target)
        with self._lock:
            # Only the newest pending deployment of an endpoint is spared from retirement.
            self._pending = {k for k in self._pending if k[0] != key[0]} | {key}
        try:
            self._server_for(target, retire=False)
        except Exception:
            log.info("warming %s for %s failed", target.model_name, target.endpoint_name, exc_info=True)

    def abandon(self, endpoint_name: str) -> None:
        """The endpoint's deployment was rolled back: its warmed new fleet is stale from now on."""
        with self._lock:
            self._pending = {k for k in self._pending if k[0] != endpoint_name.lower()}

    def _done(self, server: _ModelServer) -> None:
        with self._idle:
            server.inflight -= 1
            self._idle.notify_all()

    def _retire(self, server: _ModelServer) -> None:
        """Stop an old fleet once its invocations are answered: after a blue/green deployment the
        old fleet is terminated, not the requests it was serving (and the caller does not wait)."""
        with self._lock:
            self._retiring.append(server)

        def drain() -> None:
            with self._idle:
                self._idle.wait_for(lambda: server.inflight <= 0, timeout=INVOKE_TIMEOUT_S)
            self._stop(server)
            with self._lock:
                if server in self._retiring:
                    self._retiring.remove(server)

        threading.Thread(target=drain, name="djl-emulator-retire", daemon=True).start()

    def _server_for(self, target: RuntimeTarget, retire: bool = True, use: bool = False) -> _ModelServer:
        """The running server for ``target``, started if need be; ``use``: counted as answering an
        invocation (until :meth:`_done`), so retiring it waits for the answer."""
        if target.model_data_url is None and MODEL_CHANNEL not in target.data_sources:
            raise _internal_dependency(
                f"Model {target.model_name!r} of endpoint {target.endpoint_name!r} has neither ModelDataUrl nor "
                "ModelDataSource: the emulator runtime serves model artifacts only."
            )
        key = self._key(target)
        with self._lock:
            if self._closing.is_set():
                raise _internal_dependency("The emulator is shutting down.")
            starting = self._starting.setdefault(key, threading.Lock())
        with starting:  # one start per key; concurrent first invocations wait for it
            with self._lock:
                server = self._servers.get(key)
                # The other fleet goes when the first invocation finds the endpoint settled (its
                # deployment finished or rolled back); a new fleet still warming (while the old one
                # answers) is not stale, and during a traffic shift both fleets answer.
                retire = retire and target.settled
                stale = [k for k in self._servers if retire and k[0] == key[0] and k != key and k not in self._pending]
                retired = [self._servers.pop(k) for k in stale]
                if retire:
                    self._pending.discard(key)
                running = server if server is not None and server.process.poll() is None else None
                if use and running is not None:
                    running.inflight += 1
            for old in retired:  # the endpoint moved to another artifact
                self._retire(old)
            if running is not None:
                return running
            server = self._start(target)
            with self._lock:
                self._servers[key] = server
                if use:
                    server.inflight += 1
            return server

    @staticmethod
    def _key(target: RuntimeTarget) -> tuple[str, str]:
        # One server per model *deployment*: two models may share an artifact but not an Environment.
        environment = "\0".join(f"{k}={v}" for k, v in sorted(target.environment.items()))
        sources = "\0".join(f"{k}={sorted(v.items())}" for k, v in sorted(target.data_sources.items()))
        return target.endpoint_name.lower(), (
            f"{target.model_name}\0{target.model_data_url}\0{environment}\0{sources}\0{target.network_isolation}"
        )

    def _start(self, target: RuntimeTarget) -> _ModelServer:
        if importlib.util.find_spec(SERVE_MODULE) is None:
            raise _internal_dependency(
                f"The emulator runtime needs {SERVE_MODULE} (the `djl-operator-kit serve` command, SageMaker "
                "container contract) to run model artifacts, and it is not importable."
            )
        workdir = Path(tempfile.mkdtemp(prefix=f"djl-emulator-{target.endpoint_name}-"))
        server: _ModelServer | None = None
        try:
            model_dir = workdir / "model"
            channels_dir = workdir / "additional-model-data-sources"
            if target.model_data_url is not None:
                self._materialize(
                    {"S3Uri": target.model_data_url, "S3DataType": "S3Object", "CompressionType": "Gzip"},
                    model_dir,
                    workdir,
                )
            for channel, source in target.data_sources.items():
                self._materialize(source, model_dir if channel == MODEL_CHANNEL else channels_dir / channel, workdir)
            self._map_container_paths(model_dir, channels_dir)
            self._download_model_id(target, model_dir, workdir / "model_id")
            port = _free_port()
            log_path = workdir / "serve.log"
            env = {**os.environ, **target.environment}
            if target.network_isolation:
                env = {k: v for k, v in env.items() if k not in ISOLATED_DROP} | ISOLATED_SET
            # Forked from a parent that has imported torch already (serving/forkserver.py): the
            # same `djl-operator-kit serve` process, without paying torch's import at every start.
            process = ForkServer.shared().spawn(
                "djl_operator_kit.cli",
                ["serve", str(model_dir), "--port", str(port)],
                env=env,
                cwd=workdir,
                log=log_path,
                name=SERVER_PROCESS_NAME,
            )
            server = _ModelServer(process, port, workdir, log_path)
            self._wait_ready(server, target)
            return server
        except BaseException:
            if server is not None:
                self._stop(server)
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    def _materialize(self, source: dict[str, str], dest: Path, workdir: Path) -> None:
        """One S3ModelDataSource into ``dest``, as SageMaker lays it out before the container starts."""
        uri = source.get("S3Uri") or ""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not bucket:
            raise _internal_dependency(f"S3Uri {uri!r} is not an s3:// URL.")
        dest.mkdir(parents=True, exist_ok=True)
        try:
            if source.get("S3DataType") == "S3Prefix":
                for found in self._keys(bucket, key):
                    relative = relative_key(found, key)
                    if relative is not None:
                        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
                        self._fetch(bucket, found, dest / relative)
            elif source.get("CompressionType") == "Gzip":
                archive = workdir / "model.tar.gz"
                self._fetch(bucket, key, archive)
                try:
                    _extract(archive, dest)
                except (tarfile.TarError, OSError) as exc:
                    raise _internal_dependency(f"{uri} is not a valid tar.gz: {exc}") from exc
                archive.unlink()
            else:
                self._fetch(bucket, key, dest / key.rsplit("/", 1)[-1])
        except ApiError:
            raise
        except Exception as exc:
            raise _internal_dependency(f"Could not fetch {uri}: {exc}") from exc

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        if self._list_keys is None:
            raise _internal_dependency("An S3Prefix model data source needs S3 listing, which this runtime lacks.")
        return self._list_keys(bucket, prefix)

    @staticmethod
    def _map_container_paths(model_dir: Path, channels_dir: Path) -> None:
        """An ``option.model_id`` naming where the container finds its data points at the local copy."""
        properties_path = _properties_file(model_dir)
        if properties_path is None:
            return
        text = properties_path.read_text(encoding="utf-8", errors="replace")
        try:
            model_id = parse_properties(text).get(MODEL_ID_KEY, "")
        except ValueError:
            return
        local = local_path(model_id, model_dir, channels_dir)
        if local is not None:
            properties_path.write_text(with_property(text, MODEL_ID_KEY, str(local)), encoding="utf-8")

    def _download_model_id(self, target: RuntimeTarget, model_dir: Path, dest: Path) -> None:
        """Fetch an ``s3://`` option.model_id into ``dest`` and point serving.properties at it."""
        properties_path = _properties_file(model_dir)
        if properties_path is None:
            return  # `serve` reports the missing file itself
        text = properties_path.read_text(encoding="utf-8", errors="replace")
        try:
            model_id = parse_properties(text).get(MODEL_ID_KEY, "")
        except ValueError:
            return  # malformed properties: `serve` names the line
        if not model_id.startswith("s3://"):
            return
        fail = functools.partial(model_error, target.endpoint_name, self._region, self._account_id, 500)
        if target.network_isolation:
            raise fail(f"could not download {MODEL_ID_KEY} {model_id}: the container is network isolated")
        if self._list_keys is None:
            raise _internal_dependency(f"{MODEL_ID_KEY}={model_id} needs S3 listing, which this runtime lacks.")
        try:
            bucket, prefix = split_s3_prefix(model_id)
        except ValueError as exc:
            raise fail(f"{MODEL_ID_KEY}: {exc}") from exc
        try:
            keys = self._list_keys(bucket, prefix)
            fetched = 0
            for key in keys:
                relative = relative_key(key, prefix)
                if relative is None:
                    continue
                (dest / relative).parent.mkdir(parents=True, exist_ok=True)
                self._fetch(bucket, key, dest / relative)
                fetched += 1
        except Exception as exc:
            # DJL fails the model load when the download fails; the endpoint answers 5xx.
            raise fail(f"could not download {MODEL_ID_KEY} {model_id}: {exc}") from exc
        if fetched == 0:
            raise fail(f"{MODEL_ID_KEY} {model_id} holds no objects: nothing to load")
        properties_path.write_text(with_property(text, MODEL_ID_KEY, str(dest)), encoding="utf-8")

    def _wait_ready(self, server: _ModelServer, target: RuntimeTarget) -> None:
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise model_error(
                    target.endpoint_name,
                    self._region,
                    self._account_id,
                    500,
                    f"model server exited with code {server.process.returncode}: {server.log_tail()}",
                )
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            try:
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass  # not listening yet
            finally:
                conn.close()
            if self._closing.wait(0.1):
                break
        raise model_error(
            target.endpoint_name,
            self._region,
            self._account_id,
            503,
            f"model server did not answer /ping with 200 within {self._start_timeout:.0f}s: {server.log_tail()}",
        )

    @staticmethod
    def _stop(server: _ModelServer) -> None:
        processes.stop(server.process, timeout=5)
        shutil.rmtree(server.workdir, ignore_errors=True)

    def answering(self) -> int:
        """Invocations being answered now, by current and retiring servers alike."""
        with self._lock:
            return sum(s.inflight for s in [*self._servers.values(), *self._retiring])

    def retiring(self) -> int:
        """Old fleets waiting for their last answers before they stop."""
        with self._lock:
            return len(self._retiring)

    def running(self) -> int:
        with self._lock:
            return sum(1 for s in self._servers.values() if s.process.poll() is None)

    def close(self) -> None:
        """Stop every model server and refuse new ones."""
        self._closing.set()
        self.stop_all()

    def stop_all(self) -> None:
        with self._lock:
            servers = list(self._servers.values()) + self._retiring
            self._servers.clear()
            self._pending.clear()
            self._retiring = []
        for server in servers:
            with contextlib.suppress(Exception):
                self._stop(server)
