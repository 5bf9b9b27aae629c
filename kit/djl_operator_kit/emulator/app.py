"""``Emulator``: one local SageMaker + S3 world, in this process."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.config import Config

from .autoscaling import AutoScaling
from .calls import Call, CallLog
from .clients import make_client
from .cloudwatch import CloudWatch
from .config import EmulatorConfig
from .events import EventBus, QueueServer
from .faults import Delays, Faults
from .frontend import FrontendServer
from .runtime import ModelServers
from .s3 import S3Server
from .sagemaker import RuntimeTarget, SageMaker
from .tagging import TaggingApi

# Distinct accounts for emulators sharing a process (moto's S3 state is per process).
_ACCOUNTS = itertools.count()
_ACCOUNTS_LOCK = threading.Lock()
DUMMY_KEY, DUMMY_SECRET = "testing", "testing"


def _next_account() -> str:
    with _ACCOUNTS_LOCK:
        return str(123456789012 + next(_ACCOUNTS))


class Emulator:
    """Start with :meth:`start` (or ``with Emulator() as emu:``); everything stops with :meth:`stop`."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.region = self.config.region
        self.account_id = self.config.account_id or _next_account()
        self.faults = Faults(
            Delays(
                create=self.config.create_delay,
                update=self.config.update_delay,
                delete=self.config.delete_delay,
                rollback=self.config.rollback_delay,
                guardrail_time_scale=self.config.guardrail_time_scale,
            )
        )
        self.call_log = CallLog()
        self._s3 = S3Server(
            self.account_id, self.region, self.call_log, self.config.host, self.config.s3_port, faults=self.faults
        )
        self.cloudwatch = CloudWatch(self.region, self.account_id)
        self.sagemaker = SageMaker(self.region, self.account_id, self.faults, self._s3.exists)
        # Deployment guardrails read the alarms named in AutoRollbackConfiguration.
        self.sagemaker.alarm_states = self.cloudwatch.states
        self.tagging = TaggingApi(self.sagemaker)
        self.autoscaling = AutoScaling(self.sagemaker)
        self.sagemaker.scalable_variants = self.autoscaling.scalable_variants
        self.sagemaker.deploy_hook = self._warm_new_fleet
        # Endpoint state-change events, to the SQS queues the user's EventBridge rules target.
        self.events = EventBus(self.account_id, self.region, time.time)
        self.sagemaker.on_change = self.events.publish
        self._queues = QueueServer(self.account_id, self.call_log, self.config.host, faults=self.faults)
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None
        self.runtime = ModelServers(
            self._fetch, self.region, self.account_id, self.config.runtime_start_timeout, self._s3.list_keys
        )
        self.sagemaker.abandon_hook = self.runtime.abandon
        self._frontend: FrontendServer | None = None
        self._thread: threading.Thread | None = None
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()

    # -- lifecycle --

    def start(self) -> Emulator:
        if self._frontend is not None:
            raise RuntimeError("emulator already started")
        self._s3.start()
        self._queues.start()
        try:
            self._frontend = FrontendServer((self.config.host, self.config.port), self)
        except OSError:
            self._queues.stop()
            self._s3.stop()
            raise
        self.events.start()
        self._ticking.clear()
        self._ticker = threading.Thread(target=self._tick, name="djl-emulator-clock", daemon=True)
        self._ticker.start()
        self._thread = threading.Thread(
            target=self._frontend.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"djl-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop servers, model subprocesses and clients; wipe this emulator's S3 objects. Idempotent."""
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self.runtime.close()
        if self._frontend is not None:
            self._frontend.close_connections()
            self._frontend.shutdown()
            self._frontend.server_close()  # joins every handler thread
            if self._thread is not None:
                self._thread.join()
            self._frontend, self._thread = None, None
            self._ticking.set()
            if self._ticker is not None:
                self._ticker.join()
            self.events.stop()
            self._queues.stop()
            self._queues.wipe()
            self._s3.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses --

    @property
    def port(self) -> int:
        if self._frontend is None:
            raise RuntimeError("emulator not started")
        return int(self._frontend.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def s3_url(self) -> str:
        return self._s3.url

    @property
    def queues_url(self) -> str:
        """SQS and EventBridge (moto's server on a side port, like S3)."""
        return self._queues.url

    @property
    def admin_url(self) -> str:
        return f"{self.url}/_emulator"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a boto3 client or a subprocess (the operator, the demo)."""
        return {
            "AWS_ENDPOINT_URL_SAGEMAKER": self.url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.url,
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API": self.url,
            "AWS_ENDPOINT_URL_STS": self.url,
            "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING": self.url,
            "AWS_ENDPOINT_URL_CLOUDWATCH": self.url,
            "AWS_ENDPOINT_URL_SQS": self.queues_url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.queues_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",
            "DJL_EMULATOR_ADMIN_URL": self.admin_url,
            "DJL_EMULATOR_ACCOUNT_ID": self.account_id,
        }

    def client(self, service: str, **kwargs: Any) -> Any:
        """A stock boto3 client for "sagemaker", "sagemaker-runtime", "s3", "resourcegroupstaggingapi", "sts",
        "application-autoscaling" or "cloudwatch"
        (closed by :meth:`stop`); ``region_name=`` signs for another region, ``aws_access_key_id=``
        calls as someone else."""
        urls = {
            "sagemaker": self.url,
            "sagemaker-runtime": self.url,
            "s3": self.s3_url,
            "resourcegroupstaggingapi": self.url,
            "sts": self.url,
            "application-autoscaling": self.url,
            "cloudwatch": self.url,
            "sqs": self.queues_url,
            "events": self.queues_url,
        }
        if service not in urls:
            raise ValueError(f"service must be one of {sorted(urls)}, got {service!r}")
        kwargs.setdefault("config", Config(retries={"max_attempts": 3, "mode": "standard"}))
        kwargs.setdefault("region_name", self.region)
        kwargs.setdefault("aws_access_key_id", DUMMY_KEY)
        kwargs.setdefault("aws_secret_access_key", DUMMY_SECRET)
        client = make_client(service, endpoint_url=urls[service], **kwargs)
        with self._clients_lock:
            self._clients.append(client)
        return client

    # -- test hooks --

    def calls(self, service: str | None = None, operation: str | None = None) -> list[Call]:
        return self.call_log.calls(service, operation)

    def reset_calls(self) -> None:
        self.call_log.reset()

    def force_endpoint_failed(self, name: str, reason: str) -> None:
        self.sagemaker.force_failed(name, reason)

    def put_objects(self, bucket: str, keys: list[str], body: bytes = b"") -> None:
        """Seed S3 objects in an existing bucket without a request each (uncounted, like the emulator's own reads)."""
        self._s3.put_objects(bucket, keys, body)

    def set_invocation_rate(self, endpoint: str, variant: str, per_minute: float) -> None:
        """The load Application Auto Scaling's target tracking sees on a variant (invocations per minute)."""
        self.autoscaling.set_invocation_rate(endpoint, variant, per_minute)

    def reset(self) -> None:
        """Forget all SageMaker resources, scalable targets, alarms, faults, calls and S3 objects; stop
        model servers."""
        self.sagemaker.reset()
        self.cloudwatch.reset()
        self.autoscaling.reset()
        self.faults.clear()
        self.events.clear()
        self._queues.wipe()
        self.call_log.reset()
        self.runtime.stop_all()
        self._s3.wipe()

    def _tick(self) -> None:
        # With an event rule in place, lifecycle steps happen on time even when nobody reads, so
        # their events leave on time. Without one, the lifecycle moves when it is read, as before
        # (a zero-delay RollingBack is then seen by the next read, not skipped by the clock).
        while not self._ticking.wait(0.05):
            if self.events.routed():
                self.sagemaker.tick()

    def _warm_new_fleet(self, endpoint: str, targets: list[RuntimeTarget]) -> Callable[[], bool] | None:
        """Blue/green for InvokeEndpoint: while an update runs, start the new config's model server
        next to the old one, and hold the update in Updating until it answers /ping.

        Only for endpoints being invoked (a server runs for them): the others have nobody to
        serve, and their model data need not even be a runnable artifact."""
        if not targets or not self.runtime.serving(endpoint):
            return None
        done = threading.Event()

        def warm() -> None:
            try:
                for target in targets:
                    self.runtime.warm(target)
            finally:
                done.set()

        threading.Thread(target=warm, name=f"djl-emulator-warm-{endpoint}", daemon=True).start()
        return done.is_set

    def _fetch(self, bucket: str, key: str, dest: Path) -> None:
        self._s3.download(bucket, key, dest)
