"""Throughput and latency of the model template versus a seed-style handler.

Both run behind the real ``djl-operator-kit serve`` HTTP server on all-MiniLM-L6-v2
(CPU), hit by N concurrent keep-alive clients for a fixed time each:

- ours: ``model_template/model.py``, per-token output (``pooling=none``, the
  seed's output), ``batch_size=8`` and a short ``max_batch_delay``;
- seed: what the seed's handler did per request: load the tokenizer, tokenize
  one text, run the model outside ``inference_mode``, ``.tolist()`` the last
  hidden state; no batching.

Prints a table; not a test. ``python bench/handler.py --duration 20 --clients 8``
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
sys.path.insert(0, str(REPO))

from tests.plugins.models import minilm_model_path, render_properties, write_artifact  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per handler")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-batch-delay", type=int, default=5, help="ms")
    args = parser.parse_args(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
