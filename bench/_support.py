"""Measuring instruments for bench/operator.py: a Kubernetes API client and watch, /proc readings.

The watch timestamps every event the moment it arrives, so "apply -> Ready" is
measured on the same clock as the apply and without the 0.1-0.3 s of a
``kubectl get`` poll. Nothing here knows about the operator's internals.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from djl_operator import api

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- /proc -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcSample:
    rss_mb: float  # VmRSS
    peak_rss_mb: float  # VmHWM: the high-water mark since the process started
    cpu_s: float  # user + system CPU seconds since the process started


def proc_sample(pid: int) -> ProcSample:
    """Memory and CPU of one process from /proc (Linux)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB -> MB (MiB)
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may contain spaces; everything after the last ')' is fixed-position.
    after = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(after[11]), int(after[12])  # fields 14 and 15 of proc(5)
    return ProcSample(fields["VmRSS"], fields["VmHWM"], (utime + stime) / _CLOCK_TICKS)


class RssSampler:
    """Samples a process's RSS in the background (VmHWM alone cannot say *when* the peak was)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), proc_sample(self.pid).rss_mb))
            except (FileNotFoundError, ProcessLookupError):
                return
            self._stop.wait(self.interval)

    @property
    def peak_mb(self) -> float:
        return max((rss for _, rss in self.samples), default=0.0)


# -- statistics -------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (the 'inclusive' method), e.g. pct=95."""
    if not values:
        raise ValueError("percentile of no values")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


# -- the Kubernetes API -----------------------------------------------------------------


class KubeApi:
    """Just enough of the API for the benchmark, authenticated with an admin kubeconfig's client cert."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        server = cluster["server"].removeprefix("https://")
        self.host, _, port = server.partition(":")
        self.port = int(port or 443)
        self._certs = tempfile.TemporaryDirectory(prefix="bench-kube-")
        cert, key = Path(self._certs.name) / "client.crt", Path(self._certs.name) / "client.key"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        self.ssl = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.ssl.load_cert_chain(str(cert), str(key))

    def close(self) -> None:
        self._certs.cleanup()

    def connection(self, timeout: float | None = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ssl, timeout=timeout)

    @staticmethod
    def collection(namespace: str) -> str:
        return f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{api.PLURAL}"

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if payload is not None else {}
        deadline = time.monotonic() + 30
        while True:
            conn = self.connection()
            try:
                conn.request(method, path, body=payload, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            # 429 "storage is (re)initializing" right after a CRD is installed: honour Retry-After.
            if resp.status == 429 and time.monotonic() < deadline:
                time.sleep(float(resp.getheader("Retry-After") or 1))
                continue
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {data[:500]!r}")
            return json.loads(data) if data else None

    def create(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", self.collection(namespace), manifest)
        return result

    def merge_patch_spec(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PATCH", f"{self.collection(namespace)}/{name}", {"spec": spec}, "application/merge-patch+json"
        )
        return result

    def delete(self, namespace: str, name: str) -> None:
        self.request("DELETE", f"{self.collection(namespace)}/{name}")

    def list(self, namespace: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", self.collection(namespace))
        return result


def is_ready(body: dict[str, Any]) -> bool:
    """Ready=True for the current generation (what ``Cluster.wait_ready`` checks)."""
    status = body.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return ready and status.get("observedGeneration") == body["metadata"].get("generation")


@dataclass
class Tracked:
    """What the watch saw of one resource, as monotonic timestamps."""

    added: float | None = None
    ready: dict[int, float] = field(default_factory=dict)  # generation -> first time Ready for it
    status_writes: list[float] = field(default_factory=list)  # every event whose .status changed
    phases: list[str | None] = field(default_factory=list)  # status.phase after each of those writes
    deleted: float | None = None
    last: dict[str, Any] = field(default_factory=dict)


class Watch:
    """A background watch of the DjlEndpoints of one namespace.

    ``wait(predicate)`` blocks on the watch's own notifications, so waiting for
    200 resources costs no polling of the API server.
    """

    def __init__(self, kube: KubeApi, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.resources: dict[str, Tracked] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._conn: http.client.HTTPSConnection | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{namespace}", daemon=True)

    def __enter__(self) -> Watch:
        listing = self.kube.list(self.namespace)
        now = time.monotonic()
        for item in listing["items"]:
            self._record("ADDED", item, now)
        self._resource_version = listing["metadata"]["resourceVersion"]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._stop = True
        conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        # A watch ends after timeoutSeconds or on a dropped connection: resume from the last version.
        while True:
            with self._cond:
                if self._stop:
                    return
            path = (
                f"{KubeApi.collection(self.namespace)}?watch=1&allowWatchBookmarks=true"
                f"&resourceVersion={self._resource_version}&timeoutSeconds=1800"
            )
            self._conn = conn = self.kube.connection(timeout=None)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                if resp.status != 200:
                    raise RuntimeError(f"watch {path}: HTTP {resp.status}: {resp.read()[:300]!r}")
                while True:
                    line = resp.readline()
                    if not line:
                        break
                    now = time.monotonic()
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch error: {obj}")
                    self._resource_version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._record(event["type"], obj, now)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                with self._cond:
                    if self._stop:
                        return
                    self._error = exc
                    self._cond.notify_all()
                return
            except BaseException as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            finally:
                conn.close()

    def _record(self, kind: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        with self._cond:
            tracked = self.resources.setdefault(name, Tracked())
            if kind == "ADDED" and tracked.added is None:
                tracked.added = now
            if kind == "DELETED":
                tracked.deleted = now
            elif (obj.get("status") or {}) != (tracked.last.get("status") or {}):
                tracked.status_writes.append(now)
                tracked.phases.append((obj.get("status") or {}).get("phase"))
            generation = int(obj["metadata"].get("generation") or 0)
            if kind != "DELETED" and is_ready(obj) and generation not in tracked.ready:
                tracked.ready[generation] = now
            tracked.last = obj
            self._cond.notify_all()

    def wait(self, predicate: Callable[[dict[str, Tracked]], bool], timeout: float, what: str) -> float:
        """Block until ``predicate(resources)`` holds; returns the monotonic time it first held."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.resources):
                if self._error is not None:
                    raise RuntimeError(f"watch of {self.namespace} failed: {self._error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
                self._cond.wait(min(left, 1.0))
            return time.monotonic()

    def snapshot(self, name: str) -> Tracked:
        with self._cond:
            tracked = self.resources.get(name) or Tracked()
            return Tracked(
                tracked.added,
                dict(tracked.ready),
                list(tracked.status_writes),
                list(tracked.phases),
                tracked.deleted,
                tracked.last,
            )


# -- profiling --------------------------------------------------------------------------


class PySpy:
    """``py-spy record`` attached to a running process; the collapsed stacks land in ``out``."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).is_file():
            raise RuntimeError("py-spy not found: pip install -e '.[bench]'")
        self.args = [
            exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ]
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PySpy:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # attach before the measured work starts
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _function(frame: str) -> str:
    """``reconcile (djl_operator/reconcile.py:123)`` -> ``reconcile (djl_operator/reconcile.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path})" if path else name


def profile_summary(collapsed: Path, n: int = 12, project: str = "djl_operator/") -> dict[str, Any]:
    """From py-spy's collapsed stacks: the sample count, the ``n`` functions with most self samples
    (where CPU goes), and the ``n`` functions under ``project`` with most inclusive samples (which
    of our code paths cause it), as percentages of all samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # The first frames name the process and thread; then outermost to innermost.
        frames = [_function(f) for f in stack.split(";") if " (" in f and not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        total += count
        for fn in set(frames):
            inclusive[fn] += count
        own[frames[-1]] += count

    def pct(counter: collections.Counter[str], keep: Callable[[str], bool]) -> list[tuple[str, float]]:
        ranked = [(fn, c) for fn, c in counter.most_common() if keep(fn)][:n]
        return [(fn, round(100.0 * c / max(total, 1), 1)) for fn, c in ranked]

    return {
        "samples": total,
        "self": pct(own, lambda fn: True),
        "inclusive_project": pct(inclusive, lambda fn: f"({project}" in fn),
    }
