"""``djl-operator-kit serve ARTIFACT``: the SageMaker container contract on a local port.

``GET /ping`` answers 200 once the model is loaded and 503 while it loads or
after it failed to; ``POST /invocations`` hands the request to the artifact's
``model.py`` the way DJL Serving does (headers as properties, so the
``Content-Type`` property; the body as ``data``), batching concurrent requests
when serving.properties sets ``batch_size``, and returns the handler's status,
body and content type. A threaded stdlib HTTP server: the handler itself runs on
one worker thread, like one DJL Python worker. SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from djl_operator import logs
from djl_operator_kit.serving.artifact import Artifact, ArtifactError, open_artifact
from djl_operator_kit.serving.batching import Batcher
from djl_operator_kit.serving.lmi import (
    DEFAULT_MAX_ROLLING_BATCH_SIZE,
    JSONLINES,
    Engine,
    LmiRequestError,
    LmiService,
    parse,
)
from djl_operator_kit.serving.loader import load_handler
from djl_operator_kit.serving.protocol import Response, invoke, new_input

logger = logging.getLogger("djl_operator.serve")

# SageMaker real-time endpoints refuse payloads over 6 MB.
MAX_BODY_BYTES = 6 * 1024 * 1024


class ModelServer(ThreadingHTTPServer):
    """The HTTP server plus the model's lifecycle: loading -> ready | failed."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], artifact: Artifact) -> None:
        super().__init__(address, _RequestHandler)
        self.artifact = artifact
        self.state = "loading"
        self.failure = ""
        self.batcher: Batcher | None = None
        self._input_cls: type | None = None
        self.lmi: LmiService | None = None

    def _load_lmi(self) -> None:
        """LMI's built-in handler: the LLM contract on the model, with rolling batch (or not)."""
        props = self.artifact.properties
        model_id = props.get("option.model_id") or str(self.artifact.root)
        if not model_id.startswith("/") and (self.artifact.root / model_id).is_dir():
            model_id = str(self.artifact.root / model_id)
        disabled = props.get("option.rolling_batch") == "disable"
        size = props.get("option.max_rolling_batch_size")
        max_batch = 1 if disabled else int(size) if size and size.isdigit() else DEFAULT_MAX_ROLLING_BATCH_SIZE
        length = props.get("option.max_model_len")
        engine = Engine(model_id, props.get("option.task", ""), max(1, max_batch), int(length) if length else None)
        self.lmi = LmiService(engine, props.get("option.model_id", "model"))
        self.state = "ready"
        logger.info("LMI handler ready (rolling batch %s, max %d)", "off" if disabled else "on", max_batch)

    def load(self) -> None:
        """Import the handler and make DJL's load call (an empty Input with the properties)."""
        if self.artifact.is_lmi:
            try:
                self._load_lmi()
            except Exception as exc:
                logger.exception("model failed to load")
                self.failure, self.state = f"{type(exc).__name__}: {exc}", "failed"
            return
        try:
            loaded = load_handler(self.artifact.root, self.artifact.entry_point, self.artifact.handler_name)
            init = loaded.input_cls()
            init.properties.update(self.artifact.handler_properties())
            output = loaded.handle(init)
            if output is not None and int(output.code) >= 300:
                body = output.content.value_at(0) if not output.content.is_empty() else b""
                raise RuntimeError(f"load call answered {output.code}: {bytes(body).decode(errors='replace')}")
        except Exception as exc:
            logger.exception("model failed to load")
            self.failure, self.state = f"{type(exc).__name__}: {exc}", "failed"
            return
        self._input_cls = loaded.input_cls
        self.batcher = Batcher(
            functools.partial(invoke, loaded.handle, loaded.input_cls),
            self.artifact.batch_size,
            self.artifact.max_batch_delay_ms / 1000.0,
        )
        self.state = "ready"
        logger.info(
            "model ready (batch_size=%d, max_batch_delay=%d ms)",
            self.artifact.batch_size,
            self.artifact.max_batch_delay_ms,
        )

    def unavailable(self) -> Response:
        if self.state == "failed":
            return Response(
                HTTPStatus.SERVICE_UNAVAILABLE, _json({"status": "Failed", "error": self.failure}), "application/json"
            )
        return Response(HTTPStatus.SERVICE_UNAVAILABLE, _json({"status": "Loading"}), "application/json")

    def invoke_lmi(self, headers: list[tuple[str, str]], body: bytes) -> Response:
        assert self.lmi is not None
        content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
        try:
            request = parse(body, content_type)
            if request.stream:
                return Response(HTTPStatus.OK, b"", JSONLINES, chunks=self.lmi.stream(request))
            answer, answer_type = self.lmi.answer(request)
            return Response(HTTPStatus.OK, answer, answer_type)
        except LmiRequestError as exc:
            return Response.error(exc.status, str(exc))

    def invoke(self, headers: list[tuple[str, str]], body: bytes) -> Response:
        if self.state == "ready" and self.lmi is not None:
            return self.invoke_lmi(headers, body)
        if self.state != "ready" or self.batcher is None or self._input_cls is None:
            return self.unavailable()
        request = new_input(self._input_cls, headers, body)
        return self.batcher.submit(request, self.artifact.predict_timeout_s)

    def server_close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        if self.lmi is not None:
            self.lmi.engine.close()
        super().server_close()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    # Streamed tokens leave at once: Nagle plus delayed ACKs would hold each small chunk ~40 ms.
    disable_nagle_algorithm = True
    server: ModelServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/ping":
            self._send(Response.error(HTTPStatus.NOT_FOUND, f"no route GET {self.path}; try /ping"))
        elif self.server.state == "ready":
            self._send(Response(HTTPStatus.OK, _json({"status": "Healthy"}), "application/json"))
        else:
            self._send(self.server.unavailable())

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/invocations":
            self._discard_body()
            self._send(Response.error(HTTPStatus.NOT_FOUND, f"no route POST {self.path}; try /invocations"))
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self._send(Response.error(HTTPStatus.LENGTH_REQUIRED, "Content-Length header is required"))
            return
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            error = f"request body is {length} bytes; the limit is {MAX_BODY_BYTES}"
            self._send(Response.error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, error))
            return
        body = self.rfile.read(int(length))
        self._send(self.server.invoke(list(self.headers.items()), body))

    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) <= MAX_BODY_BYTES:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        if response.chunks is not None:
            self._send_chunks(response.chunks)
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _send_chunks(self, chunks: Iterator[bytes]) -> None:
        """HTTP/1.1 chunked encoding, each chunk written and flushed as it is made."""
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
        except Exception as exc:  # headers are gone: end the stream with the error as its last line
            logger.exception("stream failed")
            error = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(error), error))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="djl-operator-kit serve",
        description="Serve a DJL model artifact (model.tar.gz or folder) with the SageMaker container contract.",
    )
    parser.add_argument("artifact", type=Path, help="model.tar.gz, or a folder with serving.properties and model.py")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (0 picks a free one; default 8080)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler()
    # The handler may log what the model's loader did (S3, the Hub): redacted like the operator's logs.
    handler.setFormatter(logs.RedactingFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")))
    logging.basicConfig(level=args.log_level, handlers=[handler])
    logs.register_environment_secrets()
    with tempfile.TemporaryDirectory(prefix="djl-serve-") as scratch:
        try:
            artifact = open_artifact(args.artifact, Path(scratch))
        except (ArtifactError, OSError) as exc:
            print(f"djl-operator-kit serve: {exc}", file=sys.stderr)
            return 2
        try:
            server = ModelServer((args.host, args.port), artifact)
        except OSError as exc:
            print(f"djl-operator-kit serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 2
        host, port = str(server.server_address[0]), int(server.server_address[1])
        # Parsed by callers that pass --port 0.
        print(f"djl-operator-kit serve: listening on http://{host}:{port}", flush=True)

        def stop(signum: int, _frame: Any) -> None:
            logger.info("signal %d: shutting down", signum)
            # shutdown() waits for serve_forever, which runs on this (the main) thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        threading.Thread(target=server.load, name="djl-load", daemon=True).start()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
