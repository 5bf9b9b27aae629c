"""``djl-operator-kit serve`` as a real process: the SageMaker container contract over
HTTP, with the model template on tiny models, dynamic batching and SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.plugins.models import HIDDEN

# Wraps the template's handler to write down the batch size of every call it gets.
RECORDING_HANDLER = """
import os
import model

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batches.log")


def handle(inputs):
    if not inputs.is_empty():
        with open(LOG, "a") as log:
            log.write(f"{inputs.get_batch_size()}\\n")
    return model.handle(inputs)
"""


class Server:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process, self.port = process, port

    def request(
        self, method: str, path: str, body: bytes | str | None = None, content_type: str | None = None
    ) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read()
        finally:
            connection.close()

    def invoke(self, body: object, content_type: str = "application/json") -> tuple[int, object]:
        raw = body if isinstance(body, str) else json.dumps(body)
        status, _, data = self.request("POST", "/invocations", raw, content_type)
        return status, json.loads(data)

    def wait_until_settled(self, timeout_s: float = 120) -> int:
        """Poll /ping until it stops saying Loading; return its status."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, _, body = self.request("GET", "/ping")
            if status == 200 or json.loads(body).get("status") != "Loading":
                return status
            time.sleep(0.2)
        raise TimeoutError("server still loading")


@contextmanager
def serving(artifact: Path) -> Iterator[Server]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "djl_operator_kit.cli", "serve", str(artifact), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in first, first
        # Keep draining the log so the server never blocks on a full pipe.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield Server(process, int(first.rsplit(":", 1)[1]))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def batching_artifact(tiny_artifact: Callable[..., Path]) -> Path:
    return tiny_artifact(
        "feature-extraction",
        extra_files={"recording.py": RECORDING_HANDLER},
        entryPoint="recording.py",
        batch_size=4,
        max_batch_delay=300,
    )


@pytest.fixture(scope="module")
def server(batching_artifact: Path) -> Iterator[Server]:
    with serving(batching_artifact) as running:
        assert running.wait_until_settled() == 200
        yield running


def test_ping(server):
    status, content_type, body = server.request("GET", "/ping")
    assert (status, content_type, json.loads(body)) == (200, "application/json", {"status": "Healthy"})
    assert server.request("GET", "/nope")[0] == 404


def test_invocations_text_and_json(server):
    status, tokens = server.invoke("the quick brown fox", content_type="text/plain")
    assert status == 200 and len(tokens) == 6 and len(tokens[0]) == HIDDEN
    status, pooled = server.invoke({"inputs": ["hello", "a cat sat"], "parameters": {"pooling": "mean"}})
    assert status == 200 and [len(v) for v in pooled] == [HIDDEN, HIDDEN]
    status, content_type, _ = server.request("POST", "/invocations", '{"inputs": "x y"}', "application/json")
    assert status == 200 and content_type == "application/json"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        ("", "text/plain", 400, "empty text"),
        ('{"inputs": 5}', "application/json", 400, "wrong JSON shape"),
        ('{"inputs": "a", "parameters": {"top_k": 2}}', "application/json", 400, "unsupported parameter(s)"),
        ("\x00", "application/octet-stream", 415, "unsupported content type"),
    ],
)
def test_bad_request_gets_4xx_and_the_server_survives(server, body, content_type, status, words):
    got, error = server.invoke(body, content_type)
    assert got == status and words in error["error"]
    assert server.invoke({"inputs": "hello"})[0] == 200


def test_concurrent_requests_are_batched(server, batching_artifact):
    log = batching_artifact / "batches.log"
    log.write_text("")
    texts = ["hello", "the cat sat", "a quick brown fox jumps", "red"]
    results: dict[int, tuple[int, object]] = {}
    barrier = threading.Barrier(len(texts))

    def client(i: int) -> None:
        barrier.wait()
        results[i] = server.invoke(texts[i], content_type="text/plain")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    seen = [int(line) for line in log.read_text().split()]
    assert max(seen) > 1, f"handler batch sizes: {seen}"
    assert sum(seen) == len(texts)
    # Each caller got its own text's answer back: [CLS] + words + [SEP] vectors.
    assert {i: (status, len(vectors)) for i, (status, vectors) in results.items()} == {
        i: (200, len(text.split()) + 2) for i, text in enumerate(texts)
    }


def test_tarball_artifact_and_sigterm(tiny_artifact, tmp_path):
    folder = tiny_artifact("text-classification")
    tarball = tmp_path / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for path in folder.iterdir():
            archive.add(path, arcname=path.name)
    with serving(tarball) as running:
        assert running.wait_until_settled() == 200
        status, best = running.invoke({"inputs": "hello world"})
        assert status == 200 and best["label"] in {"negative", "neutral", "positive"}
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(15) == 0


def test_broken_model_pings_503_with_the_reason(tiny_artifact, tmp_path):
    with serving(tiny_artifact("feature-extraction", model_id=tmp_path / "no-such-model")) as running:
        status = running.wait_until_settled()
        _, _, body = running.request("GET", "/ping")
        assert status == 503 and json.loads(body)["status"] == "Failed" and "no-such-model" in json.loads(body)["error"]
        got, error = running.invoke({"inputs": "hello"})
        assert got == 503 and error["status"] == "Failed"


def test_bad_artifact_exits_with_a_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "djl_operator_kit.cli", "serve", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "no serving.properties" in result.stderr
