"""Drive an emulator in another process through its admin HTTP API.

``EmulatorProcess.spawn()`` runs ``python -m djl_operator.cli emulator --port 0``
and reads the environment it prints; ``RemoteEmulator(admin_url)`` attaches to
one already running (the demo prints ``DJL_EMULATOR_ADMIN_URL``). Both offer the
same test hooks as the in-process :class:`~djl_operator_kit.emulator.Emulator`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

from djl_operator_kit import processes

from .calls import Call
from .clients import make_client

READY_LINE = "# djl emulator ready"


class AdminError(RuntimeError):
    pass


class RemoteFaults:
    """Same methods as :class:`~djl_operator_kit.emulator.faults.Faults`, over HTTP."""

    def __init__(self, remote: RemoteEmulator) -> None:
        self._remote = remote

    def _post(self, name: str, args: dict[str, Any]) -> None:
        self._remote.request("POST", f"/faults/{name}", {k: v for k, v in args.items() if v is not None})

    def set(self, **delays: float) -> None:
        self._post("set", delays)

    def fail_model_start(
        self, model_name: str | None = None, image: str | None = None, reason: str | None = None
    ) -> None:
        self._post("fail_model_start", {"model_name": model_name, "image": image, "reason": reason})

    def capacity_error(self, instance_type: str | None = None, reason: str | None = None) -> None:
        self._post("capacity_error", {"instance_type": instance_type, "reason": reason})

    def throttle(
        self,
        rate: float | None = None,
        seed: int = 0,
        every: int | None = None,
        operations: list[str] | None = None,
        limit: int | None = None,
    ) -> None:
        self._post("throttle", {"rate": rate, "seed": seed, "every": every, "operations": operations, "limit": limit})

    def deny(self, *operations: str) -> None:
        self._post("deny", {"operations": list(operations)})

    def internal_error(self, *operations: str) -> None:
        self._post("internal_error", {"operations": list(operations)})

    def quota(self, instance_type: str, instances: int) -> None:
        self._post("quota", {"instance_type": instance_type, "instances": instances})

    def clear(self) -> None:
        self._remote.request("DELETE", "/faults")

    def snapshot(self) -> dict[str, Any]:
        result: dict[str, Any] = self._remote.request("GET", "/faults")
        return result


class RemoteEmulator:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.faults = RemoteFaults(self)
        self._env: dict[str, str] | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.admin_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise AdminError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc

    @property
    def env(self) -> dict[str, str]:
        if self._env is None:
            self._env = dict(self.request("GET", "/env"))
        return self._env

    def client(self, service: str, **kwargs: Any) -> Any:
        env = self.env
        urls = {
            "sagemaker": env["AWS_ENDPOINT_URL_SAGEMAKER"],
            "sagemaker-runtime": env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"],
            "s3": env["AWS_ENDPOINT_URL_S3"],
            "resourcegroupstaggingapi": env["AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API"],
            "sts": env["AWS_ENDPOINT_URL_STS"],
            "application-autoscaling": env["AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING"],
            "cloudwatch": env["AWS_ENDPOINT_URL_CLOUDWATCH"],
        }
        kwargs.setdefault("region_name", env["AWS_DEFAULT_REGION"])
        return make_client(
            service,
            endpoint_url=urls[service],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            **kwargs,
        )

    def calls(self, service: str | None = None, operation: str | None = None) -> list[Call]:
        query = "&".join(f"{k}={v}" for k, v in (("service", service), ("operation", operation)) if v)
        data = self.request("GET", "/calls" + (f"?{query}" if query else ""))
        return [Call.from_json(c) for c in data["calls"]]

    def reset_calls(self) -> None:
        self.request("DELETE", "/calls")

    def force_endpoint_failed(self, name: str, reason: str) -> None:
        self.request("POST", f"/endpoints/{name}/fail", {"reason": reason})

    def set_invocation_rate(self, endpoint: str, variant: str, per_minute: float) -> None:
        self.request(
            "POST", "/autoscaling/invocation_rate", {"endpoint": endpoint, "variant": variant, "per_minute": per_minute}
        )

    def reset(self) -> None:
        self.request("POST", "/reset")


class EmulatorProcess(RemoteEmulator):
    """An emulator subprocess; ``stop()`` ends it (and with it its moto and model servers)."""

    def __init__(self, process: subprocess.Popen[str], env: dict[str, str]) -> None:
        super().__init__(env["DJL_EMULATOR_ADMIN_URL"])
        self.process = process
        self._env = env
        self._drain = threading.Thread(target=self._discard_output, daemon=True)
        self._drain.start()

    def _discard_output(self) -> None:
        # Keep reading so a chatty emulator never blocks on a full pipe.
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    @classmethod
    def spawn(cls, *args: str, timeout: float = 30.0) -> EmulatorProcess:
        """Start ``djl-operator-kit emulator --port 0 <args>`` and wait until it printed its env."""
        process = subprocess.Popen(
            [sys.executable, "-m", "djl_operator_kit.cli", "emulator", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        env: dict[str, str] = {}
        lines: list[str] = []
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if line.startswith(READY_LINE):
                    return cls(process, env)
                key, sep, value = line.strip().partition("=")
                if sep and key.isupper():
                    env[key] = value
        finally:
            timer.cancel()
        process.wait()
        raise AdminError(f"emulator exited ({process.returncode}) before it was ready:\n{''.join(lines)}")

    def stop(self) -> None:
        processes.stop(self.process, timeout=10)
        self._drain.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
