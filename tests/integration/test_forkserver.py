"""The model-server fork server: each child is the process ``python -m <module>`` would be, with its
own environment, working directory, session and log, and the exit code Popen would report."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from djl_operator_kit.serving import forkserver as forkserver_module
from djl_operator_kit.serving.forkserver import ForkServer

REPORTER = """
import json, os, sys
print("to stdout")
print("to stderr", file=sys.stderr)
report = {
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "env": dict(os.environ),
    "session_leader": os.getsid(0) == os.getpid(),
    "parent": os.getppid(),
    "preloaded": sorted(m for m in ("torch", "numpy", "transformers", "huggingface_hub") if m in sys.modules),
    "main": __name__,
    "comm": open("/proc/self/comm").read().strip(),
    "open_fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
}
with open("report.json", "w") as out:
    json.dump(report, out)
sys.exit(int(sys.argv[1]))
"""

SLEEPER = """
import time
print("sleeping", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def forkserver() -> ForkServer:
    """The process's shared one, as the emulator uses it (its preload is paid once per process)."""
    return ForkServer.shared()


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_child_runs_the_module_with_its_own_argv_env_cwd_session_and_log(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    (tmp_path / "reporter.py").write_text(REPORTER)
    # What the preload read is the same as the fork server's (else a fresh interpreter: next test).
    same_preload = forkserver_module._preload_environment(os.environ)
    env = {**same_preload, "PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1", "ONLY_HERE": "yes"}
    log = tmp_path / "child.log"

    child = forkserver.spawn("reporter", ["3", "--flag"], env=env, cwd=tmp_path, log=log, name="reporter-name")

    assert child.wait(timeout=30) == 3
    assert child.poll() == 3
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["argv"] == ["3", "--flag"]
    assert report["cwd"] == str(tmp_path)
    assert report["env"] == env, "the child sees exactly the environment it was given, nothing of its parent's"
    assert report["session_leader"] is True
    assert report["main"] == "__main__"
    assert report["comm"] == "reporter-name"
    # Preloaded: what reads no environment at import. Not: what does (HF_* decide how it behaves).
    assert report["preloaded"] == ["numpy", "torch"]
    assert report["open_fds"] == [0, 1, 2, 3], "only stdio (and the listing's own fd) are open"
    assert log.read_text().splitlines() == ["to stdout", "to stderr"]


def test_terminate_and_kill_report_the_signal_like_popen(forkserver: ForkServer, tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    children = [
        forkserver.spawn("sleeper", [], env=dict(os.environ), cwd=tmp_path, log=tmp_path / f"{n}.log") for n in range(2)
    ]
    for n in range(2):
        _wait_for(tmp_path / f"{n}.log")
    assert [c.poll() for c in children] == [None, None]

    children[0].terminate()
    children[1].kill()

    assert children[0].wait(timeout=10) == -signal.SIGTERM
    assert children[1].wait(timeout=10) == -signal.SIGKILL
    # Reaped and reported: a later signal to the same handle goes nowhere (the pid may be reused).
    children[0].kill()
    assert children[0].poll() == -signal.SIGTERM


def test_an_exception_in_the_child_is_exit_code_one_with_its_traceback_in_the_log(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    log = tmp_path / "child.log"
    child = forkserver.spawn("no_such_module_here", [], env=dict(os.environ), cwd=tmp_path, log=log)

    assert child.wait(timeout=30) == 1
    assert "No module named no_such_module_here" in log.read_text()


def test_closing_the_fork_server_stops_every_child(tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    server = ForkServer(preload=())  # (its own, to stop; torch plays no part here)
    child = server.spawn("sleeper", [], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "child.log")
    _wait_for(tmp_path / "child.log")

    server.close()

    assert child.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)
    assert not Path(f"/proc/{child.pid}").exists()
    assert not server.alive()
    with pytest.raises(OSError, match="exited"):
        server.spawn("sleeper", [], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "late.log")


def test_a_killed_fork_server_takes_its_children_with_it(tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    server = ForkServer(preload=())  # (its own, to kill)
    child = server.spawn("sleeper", [], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "child.log")
    _wait_for(tmp_path / "child.log")

    os.kill(server._process.pid, signal.SIGKILL)

    assert child.wait(timeout=10) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while _state(child.pid) not in ("gone", "Z"):
        assert time.monotonic() < deadline, "the orphaned child outlived its fork server"
        time.sleep(0.05)
    server.close()


def test_shared_replaces_a_fork_server_that_died(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = ForkServer(preload=())
    dead.close()
    monkeypatch.setattr(ForkServer, "_shared", dead)
    monkeypatch.setattr(forkserver_module, "PRELOAD", ())  # (the replacement need not import torch)

    replacement = ForkServer.shared()
    try:
        assert replacement is not dead and replacement.alive()
        assert ForkServer.shared() is replacement
    finally:
        replacement.close()


def test_a_child_whose_preload_environment_differs_execs_a_fresh_interpreter(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    # OpenBLAS (numpy) and torch read their thread counts when they load: the preloaded ones read the
    # fork server's, so a child asking for other values gets an interpreter of its own.
    (tmp_path / "reporter.py").write_text(REPORTER)
    env = {"PATH": os.environ["PATH"], "OMP_NUM_THREADS": "3"}

    child = forkserver.spawn("reporter", ["0"], env=env, cwd=tmp_path, log=tmp_path / "child.log", name="x")

    assert child.wait(timeout=60) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["preloaded"] == [], "a fresh interpreter: nothing preloaded"
    # (A fresh interpreter coerces the C locale and says so in LC_CTYPE, PEP 538, as `python -m` does.)
    assert {k: v for k, v in report["env"].items() if k != "LC_CTYPE"} == env
    assert report["session_leader"] is True and report["argv"] == ["0"]
    assert report["parent"] == forkserver._process.pid  # the same child, exec'd in place


def test_a_preloaded_module_printing_to_stdout_does_not_break_the_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "chatty.py").write_text('print("hello from a preloaded module", flush=True)\n')
    (tmp_path / "reporter.py").write_text(REPORTER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    server = ForkServer(preload=("chatty",))
    try:
        child = server.spawn("reporter", ["0"], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "c.log")
        assert child.wait(timeout=30) == 0
    finally:
        server.close()


def test_a_spawn_that_is_not_answered_in_time_retires_the_fork_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "reporter.py").write_text(REPORTER)
    server = ForkServer(preload=())
    monkeypatch.setattr(forkserver_module, "_SPAWN_TIMEOUT", 1e-6)
    try:
        with pytest.raises(OSError, match="did not answer"):
            server.spawn("reporter", ["0"], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "c.log")
        # Its late answer can never be taken for the next request's: it is gone, and says so.
        with pytest.raises(OSError, match="exited"):
            server.spawn("reporter", ["0"], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "d.log")
        assert not server.alive()
    finally:
        server.close()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_close_shared_stops_the_shared_fork_server_and_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    own = ForkServer(preload=())  # stands in for this process's shared one (which other tests use)
    monkeypatch.setattr(ForkServer, "_shared", own)
    child = ForkServer.shared().spawn("sleeper", [], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "c.log")
    _wait_for(tmp_path / "c.log")

    ForkServer.close_shared()

    assert child.poll() in (-signal.SIGTERM, -signal.SIGKILL), "closed before close_shared returned"
    assert not own.alive()
    assert ForkServer._shared is None
