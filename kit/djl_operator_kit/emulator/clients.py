"""boto3 clients from one shared botocore session.

A fresh session re-reads SageMaker's multi-megabyte service model (~0.3 s); sharing
one keeps ``emulator.client(...)`` and emulator start-up fast. Client creation is
serialised because botocore sessions are not thread-safe while building clients.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.session

_LOCK = threading.Lock()
# Typed Any: boto3-stubs' per-service overloads cannot take a runtime service name.
_SESSION: Any = None


def make_client(service: str, **kwargs: Any) -> Any:
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            _SESSION = boto3.session.Session(botocore_session=botocore.session.get_session())
        return _SESSION.client(service, **kwargs)
