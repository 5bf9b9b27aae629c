"""boto3 clients, built once and shared: one set per region.

Credentials come from the default chain (env, IRSA web identity, instance
profile). ``AWS_ENDPOINT_URL_*`` variables point the clients at the local
emulator without any code path of its own.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from djl_operator import metrics

_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=60,
    max_pool_connections=32,
)


@dataclass(frozen=True)
class RegionClients:
    region: str
    sagemaker: Any
    s3: Any
    runtime: Any
    # Resource Groups Tagging API: finds what carries our owner tag whatever its name.
    tagging: Any = None
    # Application Auto Scaling: spec.autoscaling's scalable target, policy and scheduled actions.
    autoscaling: Any = None

    @property
    def runtime_base_url(self) -> str:
        url: str = self.runtime.meta.endpoint_url
        return url.rstrip("/")

    def invoke_url(self, endpoint_name: str) -> str:
        return f"{self.runtime_base_url}/endpoints/{endpoint_name}/invocations"


class AwsClients:
    """Thread-safe per-region client cache (boto3 clients are thread-safe once built)."""

    def __init__(self, session: boto3.session.Session | None = None, config: Config = _CONFIG) -> None:
        self._session = session or boto3.session.Session()
        self._config = config
        self._lock = threading.Lock()
        self._by_region: dict[str, RegionClients] = {}

    def for_region(self, region: str) -> RegionClients:
        with self._lock:
            clients = self._by_region.get(region)
            if clients is None:
                new_client: Any = self._session.client  # boto3-stubs overloads on literal names

                def make(service: str) -> Any:
                    return metrics.instrument(new_client(service, region_name=region, config=self._config))

                clients = RegionClients(
                    region=region,
                    sagemaker=make("sagemaker"),
                    s3=make("s3"),
                    runtime=make("sagemaker-runtime"),
                    tagging=make("resourcegroupstaggingapi"),
                    autoscaling=make("application-autoscaling"),
                )
                self._by_region[region] = clients
            return clients

    def client(self, service: str, region: str) -> Any:
        """Another service's client (the events queue's ``sqs``), built like the others."""
        new_client: Any = self._session.client
        return metrics.instrument(new_client(service, region_name=region, config=self._config))


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
