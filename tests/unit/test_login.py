"""The operator's Kubernetes login: kopf's credentials, in a session with a bounded connection pool."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import kopf
import pytest
import yaml

from djl_operator import handlers


def test_login_bounds_the_connections_to_the_api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    async def login() -> tuple[kopf.AiohttpSession | None, int, str]:
        found = await handlers.login(logger=logging.getLogger("test"), settings=kopf.OperatorSettings())
        assert isinstance(found, kopf.AiohttpSession)
        session = found.aiohttp_session
        try:
            assert session.connector is not None
            return found, session.connector.limit, session.headers["Authorization"]
        finally:
            await session.close()

    found, limit, authorization = asyncio.run(login())
    assert found is not None
    assert found.server == "https://127.0.0.1:6443" and found.default_namespace == "team-a"
    assert limit == handlers.SETTINGS.api_connections == 128
    assert authorization == "Bearer t0ken"
