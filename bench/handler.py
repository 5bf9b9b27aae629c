"""Throughput and latency of the model template versus a seed-style handler.

Both run behind the real ``djl-operator-kit serve`` HTTP server on all-MiniLM-L6-v2
(CPU), hit by N concurrent keep-alive clients for a fixed time each:

- ours: ``model_template/model.py``, per-token output (``pooling=none``, the
  seed's output), ``batch_size=8`` and a short ``max_batch_delay``;
- seed: what the seed's handler did per request: load the tokenizer, tokenize
  one text, run the model outside ``inference_mode``, ``.tolist()`` the last
  hidden state; no batching.

The LLM rows run the local stand-in for LMI's built-in handler (``djl-operator-kit
serve`` on an LMI-style artifact: no model.py, task text-generation) on the tiny
causal LM the tests build, with streaming clients (``"stream": true``, JSON lines
read as they arrive) at 1, 4 and 16 concurrent clients: time to first token and
generated tokens per second, with rolling batch (continuous batching,
``option.max_rolling_batch_size=16``) and without (``option.rolling_batch=disable``:
one request at a time), and the ratio of the two at 16 clients. CPU only.

Prints tables; not a test. ``python bench/handler.py --duration 20 --clients 8``
(``--llm-only`` skips the MiniLM rows).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# bench/operator.py would shadow the standard library's operator module (transformers imports it).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from tests.plugins.models import (  # noqa: E402
    build_tiny_model,
    minilm_model_path,
    render_properties,
    write_artifact,
)

SEED_HANDLER = '''
"""The seed's handler logic, reproduced for comparison."""
from djl_compat import Output
from transformers import AutoModel, AutoTokenizer

model = None
model_id = None


def handle(inputs):
    global model, model_id
    if model is None:
        model_id = inputs.get_properties()["model_id"]
        model = AutoModel.from_pretrained(model_id)
    if inputs.is_empty():
        return None
    tokenizer = AutoTokenizer.from_pretrained(model_id)
    encoded = tokenizer(inputs.get_as_string(), return_tensors="pt")
    hidden = model(**encoded).last_hidden_state.tolist()
    return Output().add_as_json(hidden)
'''

TEXTS = [
    "A man is eating food.",
    "The new movie is awesome, I loved every minute of it!",
    "Kubernetes operators reconcile desired state with the world.",
    "DJL Serving batches requests for throughput.",
    "The quick brown fox jumps over the lazy dog near the river bank at dawn.",
    "Short one.",
    "Sentence embeddings map text to vectors that capture meaning.",
    "SageMaker endpoints host models behind an HTTPS API.",
]


def start(artifact: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "djl_operator_kit.cli", "serve", str(artifact), "--port", "0", "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"server did not start: {line}")
    threading.Thread(target=process.stdout.read, daemon=True).start()
    port = int(line.rsplit(":", 1)[1])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/ping")
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status == 200:
            return process, port
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("model did not load")


def load(port: int, clients: int, duration_s: float) -> tuple[list[float], int]:
    """Run ``clients`` closed-loop clients for ``duration_s``; latencies in ms and error count."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s

    def client(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        failed = 0
        while time.monotonic() < stop_at:
            body = rng.choice(TEXTS).encode()
            started = time.perf_counter()
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/plain"})
            response = connection.getresponse()
            payload = response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or not json.loads(payload):
                failed += 1
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def measure(name: str, artifact: Path, clients: int, duration_s: float) -> dict[str, float | str]:
    process, port = start(artifact)
    try:
        load(port, clients, 2.0)  # warm-up: first-call costs, allocator growth
        latencies, errors = load(port, clients, duration_s)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "handler": name,
        "requests": len(latencies),
        "req/s": len(latencies) / duration_s,
        "p50 ms": quantiles[49],
        "p99 ms": quantiles[98],
        "errors": errors,
    }


PROMPTS = ["the quick brown fox", "a cat sat on the mat", "hello world", "model serving is fast", "red blue green"]
LLM_CLIENTS = (1, 4, 16)
LLM_NEW_TOKENS = 32


def llm_artifact(dest: Path, weights: Path, rolling: bool) -> Path:
    """An LMI-style artifact (what the operator renders on the LLM path: properties only)."""
    dest.mkdir(parents=True)
    lines = ["engine=Python", f"option.model_id={weights}", "option.task=text-generation"]
    lines.append("option.max_rolling_batch_size=16" if rolling else "option.rolling_batch=disable")
    (dest / "serving.properties").write_text("\n".join(lines) + "\n")
    return dest


def stream_load(port: int, clients: int, duration_s: float) -> tuple[list[float], int, int, float]:
    """Closed-loop streaming clients for ``duration_s`` (each finishes the request it is in):
    time-to-first-token samples (ms), tokens, errors and the seconds until the last one ended."""
    began = time.monotonic()
    ttft: list[float] = []
    totals = [0, 0]
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s

    def client(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        firsts: list[float] = []
        tokens = failed = 0
        while time.monotonic() < stop_at:
            body = {"inputs": rng.choice(PROMPTS), "parameters": {"max_new_tokens": LLM_NEW_TOKENS}, "stream": True}
            started = time.perf_counter()
            connection.request(
                "POST", "/invocations", body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            if response.status != 200:
                response.read()
                failed += 1
                continue
            first = True
            for line in response:
                if first:
                    firsts.append((time.perf_counter() - started) * 1000)
                    first = False
                if "token" in json.loads(line):
                    tokens += 1
        connection.close()
        with lock:
            ttft.extend(firsts)
            totals[0] += tokens
            totals[1] += failed

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ttft, totals[0], totals[1], time.monotonic() - began


def llm_rows(duration_s: float) -> list[dict[str, float | str]]:
    rows: list[dict[str, float | str]] = []
    with tempfile.TemporaryDirectory(prefix="djl-bench-llm-") as scratch:
        weights = build_tiny_model("text-generation", Path(scratch) / "weights")
        for rolling in (True, False):
            process, port = start(llm_artifact(Path(scratch) / f"rolling-{rolling}", weights, rolling))
            try:
                stream_load(port, 4, 2.0)  # warm-up
                for clients in LLM_CLIENTS:
                    ttft, tokens, errors, elapsed = stream_load(port, clients, duration_s)
                    quantiles = statistics.quantiles(ttft, n=100) if len(ttft) > 1 else [ttft[0]] * 99
                    rows.append(
                        {
                            "mode": "rolling batch" if rolling else "one at a time",
                            "clients": clients,
                            "requests": len(ttft),
                            "ttft p50 ms": quantiles[49],
                            "ttft p99 ms": quantiles[98],
                            "tokens/s": tokens / elapsed,
                            "errors": errors,
                        }
                    )
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    return rows


def print_llm(rows: list[dict[str, float | str]], duration_s: float) -> None:
    print(
        f"\ntiny causal LM (GPT-2 style, hidden 16), CPU, streaming {LLM_NEW_TOKENS} new tokens, "
        f"{duration_s:g} s per row, via djl-operator-kit serve (LMI stand-in)"
    )
    print(f"{'mode':<14} {'clients':>7} {'requests':>9} {'ttft p50 ms':>12} {'ttft p99 ms':>12}", end="")
    print(f" {'tokens/s':>9} {'errors':>7}")
    for row in rows:
        print(
            f"{row['mode']:<14} {row['clients']:>7} {row['requests']:>9} {row['ttft p50 ms']:>12.1f} "
            f"{row['ttft p99 ms']:>12.1f} {row['tokens/s']:>9.1f} {row['errors']:>7}"
        )
    by = {(r["mode"], r["clients"]): float(r["tokens/s"]) for r in rows}
    ratio = by[("rolling batch", 16)] / by[("one at a time", 16)]
    print(f"tokens/s ratio rolling batch / one at a time at 16 clients: {ratio:.2f}x (target >= 3x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per handler")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-batch-delay", type=int, default=5, help="ms")
    parser.add_argument("--llm-duration", type=float, default=10.0, help="seconds per LLM row")
    parser.add_argument("--llm-only", action="store_true", help="only the LLM rows")
    args = parser.parse_args(argv)
    if args.llm_only:
        print_llm(llm_rows(args.llm_duration), args.llm_duration)
        return 0
    model = minilm_model_path()
    with tempfile.TemporaryDirectory(prefix="djl-bench-") as scratch:
        ours = write_artifact(
            Path(scratch) / "ours",
            render_properties(
                model,
                "feature-extraction",
                pooling="none",
                batch_size=args.batch_size,
                max_batch_delay=args.max_batch_delay,
            ),
        )
        seed = write_artifact(
            Path(scratch) / "seed",
            render_properties(model, "feature-extraction"),
            extra_files={"model.py": SEED_HANDLER},
        )
        rows = [
            measure("seed-style", seed, args.clients, args.duration),
            measure(f"ours (batch {args.batch_size})", ours, args.clients, args.duration),
        ]
    print(f"\nall-MiniLM-L6-v2, CPU, {args.clients} clients, {args.duration:g} s each, via djl-operator-kit serve")
    print(f"{'handler':<18} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for row in rows:
        print(
            f"{row['handler']:<18} {row['requests']:>9} {row['req/s']:>8.1f} "
            f"{row['p50 ms']:>8.1f} {row['p99 ms']:>8.1f} {row['errors']:>7}"
        )
    speedup = float(rows[1]["req/s"]) / float(rows[0]["req/s"])
    print(f"throughput ratio ours/seed: {speedup:.2f}x")
    print_llm(llm_rows(args.llm_duration), args.llm_duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
