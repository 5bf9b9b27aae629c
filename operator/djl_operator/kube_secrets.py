"""Read one key of one Secret: the Hugging Face token a DjlEndpoint names (spec.model.tokenSecretRef).

The operator talks to the API server with kopf's credentials: kopf's login (service account in a
pod, else the kubeconfig) hands them to :func:`use`, and this module makes one ``GET`` of the
named Secret with them (RBAC: ``get`` on ``secrets``; nothing is listed or watched, so no Secret
the operator is not pointed at is ever read). The value is registered with the log redaction
before it is returned, so no log line of this process can carry it from then on.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from djl_operator import logs

_connection: Any = None  # kopf.ConnectionInfo, set by the login handler
_guard = threading.Lock()


class SecretUnavailable(Exception):
    """The Secret or its key cannot be read (missing, forbidden, unreachable): retried, never a stall."""


def use(connection: Any) -> None:
    """Remember kopf's connection (a ``kopf.ConnectionInfo``) for reading Secrets."""
    global _connection
    with _guard:
        _connection = connection


def read_secret_key(namespace: str, name: str, key: str, *, timeout: float = 10.0) -> str:
    with _guard:
        connection = _connection
    if connection is None:
        raise SecretUnavailable("the operator has no API server connection yet")
    path = f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/secrets/{urllib.parse.quote(name)}"
    request = urllib.request.Request(connection.server.rstrip("/") + path, headers=connection.as_http_headers())
    if connection.username and connection.password:
        basic = base64.b64encode(f"{connection.username}:{connection.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    where = f"secret {namespace}/{name}"
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=connection.as_ssl_context()) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise SecretUnavailable(f"{where} does not exist") from None
        if error.code == 403:
            raise SecretUnavailable(f"the operator may not get {where} (RBAC: get on secrets)") from None
        raise SecretUnavailable(f"reading {where} failed: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
        raise SecretUnavailable(f"reading {where} failed: {type(error).__name__}") from None
    encoded = (body.get("data") or {}).get(key)
    if not isinstance(encoded, str):
        raise SecretUnavailable(f"{where} has no key {key!r}")
    try:
        value = base64.b64decode(encoded, validate=True).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError):
        raise SecretUnavailable(f"{where} key {key!r} is not UTF-8 text") from None
    if not value:
        raise SecretUnavailable(f"{where} key {key!r} is empty")
    logs.register_secret(value)
    return value
