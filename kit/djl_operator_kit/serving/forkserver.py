"""Model servers forked from one process that has imported torch already.

Each model server the emulator runs is ``djl-operator-kit serve`` in a process of its own, as each
SageMaker production variant is a container of its own. Importing torch is about three of the four
CPU seconds such a start costs, and the emulator starts one for every endpoint it is asked to invoke
(and one more for each blue/green update). So one long-lived parent imports torch once and forks each
server from there; the child then runs the same entry point it would run as a fresh process, with its
own argv, environment, working directory, session and log file.

What the parent preloads reads some environment at import: torch its ``TORCH*``/``PYTORCH*``
switches, numpy's OpenBLAS its thread counts, the interpreter ``PYTHON*`` and the loader ``LD_*``.
A child whose environment differs from the parent's in any of those (:data:`PRELOAD_ENVIRONMENT`)
does not use the preload: it execs a fresh interpreter in place (same pid, session and log), as a
container start would. transformers and huggingface_hub read ``HF_*`` at import (the offline switch,
the endpoint, the token location), so they are never preloaded: each child imports them itself.

The protocol is JSON lines over the parent's stdin and a pipe of its own (the parent's stdout
goes to its stderr, so nothing a preloaded library prints can break it): ``{"spawn": {...}}`` is
answered with ``{"spawned": pid}`` (or ``{"error": message}``), ``{"signal": pid, "number": n}``
signals a live child, and ``{"exited": pid, "code": c}`` reports each child's end, with Popen's
convention for ``code`` (negative: the signal that ended it). Only the forking parent can reap its
children and knows when one is gone, so signals go through it and reach only children it has not
reaped. When its stdin closes (the emulator stopped or died) it stops every child and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import json
import os
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

PRELOAD = (
    "torch",
    "torch._dynamo",
    "torch.distributed.tensor",
    "numpy",
    "safetensors",
    "tokenizers",
)  # heavy, and read no HF_* (see above)
# What the preloaded modules (and the interpreter) read at import or load: a child whose value of any
# of these differs from the parent's execs a fresh interpreter instead of using the preload.
PRELOAD_ENVIRONMENT = ("TORCH", "PYTORCH", "OMP_", "OPENBLAS_", "GOTO", "MKL_", "KMP_", "NUMPY_", "PYTHON", "LD_")
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_SPAWN_TIMEOUT = 180.0  # the first spawn waits for the preload


class ForkedProcess:
    """A forked model server, with the part of :class:`subprocess.Popen` its owners use."""

    def __init__(self, pid: int, forkserver: ForkServer) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._forkserver = forkserver
        self._exited = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"model server {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.returncode is None:
            self._forkserver.signal(self.pid, number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _ended(self, code: int) -> None:
        self.returncode = code
        self._exited.set()


class ForkServer:
    """The client side: starts the preloading parent and asks it for children.

    One per process (:meth:`shared`), started on first use and again if it died."""

    _shared: ClassVar[ForkServer | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, preload: Sequence[str] = PRELOAD) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Its own session, like the servers it forks: a terminal's Ctrl-C goes to the emulator's
            # host, which stops its servers in order and then closes this one's stdin.
            start_new_session=True,
        )
        self._write_lock = threading.Lock()
        self._spawn_lock = threading.Lock()  # one spawn at a time: replies come in request order
        self._replies: list[ForkedProcess | str] = []  # a child, or why there is none
        self._reply_ready = threading.Condition()
        self._children: dict[int, ForkedProcess] = {}
        self._gone = False
        self._reader = threading.Thread(target=self._read, name="djl-forkserver-reader", daemon=True)
        self._reader.start()

    @classmethod
    def shared(cls) -> ForkServer:
        with cls._shared_lock:
            if cls._shared is None or not cls._shared.alive():
                cls._shared = ForkServer()
            return cls._shared

    @classmethod
    def close_shared(cls) -> None:
        """For a process that is done with model servers (the demo, ``djl-operator-kit emulator``): stop
        the shared fork server now rather than when this process exits, so nothing outlives it."""
        with cls._shared_lock:
            shared, cls._shared = cls._shared, None
        if shared is not None:
            shared.close()

    def alive(self) -> bool:
        return not self._gone and self._process.poll() is None

    def spawn(
        self, module: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path, name: str = ""
    ) -> ForkedProcess:
        """Fork what ``python -m <module> <argv>`` would run, with this environment, working directory
        and log file (stdout and stderr). Its command line stays the fork server's; ``name`` (at most 15
        characters) is what ``ps -e``, ``top`` and ``pgrep`` show for it."""
        request = {
            "spawn": {
                "module": module,
                "argv": list(argv),
                "env": dict(env),
                "cwd": str(cwd),
                "log": str(log),
                "name": name,
            }
        }
        with self._spawn_lock:
            if not self.alive():
                raise OSError("the model-server fork server exited")
            self._send(request)
            with self._reply_ready:
                answered = self._reply_ready.wait_for(lambda: bool(self._replies) or self._gone, _SPAWN_TIMEOUT)
                reply = self._replies.pop(0) if self._replies else None
            if not answered:
                # Its late answer would pair with the next request: this one is done for.
                self._process.kill()
                self._process.wait()
                raise OSError(f"the model-server fork server did not answer within {_SPAWN_TIMEOUT:.0f}s")
        if reply is None:
            raise OSError("the model-server fork server exited")
        if isinstance(reply, str):
            raise OSError(f"could not fork a model server: {reply}")
        return reply

    def signal(self, pid: int, number: int) -> None:
        with contextlib.suppress(OSError):
            self._send({"signal": pid, "number": int(number)})

    def close(self) -> None:
        """Stop the parent, and with it every child it still has."""
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=5)  # every child's end recorded before this returns

    def _send(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        with self._write_lock:
            try:
                self._process.stdin.write(json.dumps(message).encode() + b"\n")
                self._process.stdin.flush()
            except (ValueError, BrokenPipeError) as closed:  # (a closed pipe object, or it is gone)
                raise OSError("the model-server fork server exited") from closed

    def _read(self) -> None:
        assert self._process.stdout is not None
        try:
            for line in self._process.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # (not the protocol's: it has a pipe of its own, but be sure)
                if "exited" in message:
                    child = self._children.pop(int(message["exited"]), None)
                    if child is not None:
                        child._ended(int(message["code"]))
                    continue
                reply: ForkedProcess | str
                if "spawned" in message:
                    # The spawner gets the handle itself: the child's exit notice may come (and unregister
                    # it) before the spawner runs again.
                    reply = ForkedProcess(int(message["spawned"]), self)
                    self._children[reply.pid] = reply
                else:
                    reply = str(message.get("error"))
                with self._reply_ready:
                    self._replies.append(reply)
                    self._reply_ready.notify_all()
        finally:
            # The parent is gone; its children had PR_SET_PDEATHSIG, so they are too.
            with self._reply_ready:
                self._gone = True
                self._reply_ready.notify_all()
            for child in list(self._children.values()):
                child._ended(-signal.SIGKILL)
            self._children.clear()


# --- the preloading parent (python -m djl_operator_kit.serving.forkserver MODULE...) ---------------


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _preload_environment(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(PRELOAD_ENVIRONMENT)}


def _run_child(request: Mapping[str, Any], parent: int, preloaded_with: Mapping[str, str]) -> None:
    """In the forked child: become the server process it asked for, then exit with its code.

    ``preloaded_with``: the parent's :func:`_preload_environment` when it preloaded."""
    code = 1
    try:
        os.setsid()
        # Die with the parent, as the emulator's children die with it (and if it is gone already, now).
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
        if request.get("name"):
            libc.prctl(_PR_SET_NAME, ctypes.c_char_p(request["name"].encode()[:15]))
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        # Nothing of the parent's (its pipes, its selector) stays open in the server.
        os.closerange(3, _max_fd())
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(line_buffering=True)  # (the log is read while the server runs)
        os.chdir(request["cwd"])
        if _preload_environment(request["env"]) != preloaded_with:
            # The preload read one of these differently: a fresh interpreter in place, as a container
            # start would be (ps then names it python, not `name`).
            argv = [sys.executable, "-m", request["module"], *request["argv"]]
            os.execve(sys.executable, argv, dict(request["env"]))
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = request["cwd"]  # what `python -m` started there would have
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()  # (random reseeds itself after a fork; numpy's legacy generator does not)
        sys.argv = [request["module"], *request["argv"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            import atexit
            import logging

            atexit._run_exitfuncs()
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _max_fd() -> int:
    try:
        return max(int(fd) for fd in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return 1024


def _serve(preload: Sequence[str]) -> None:
    # The protocol gets a pipe of its own; whatever else writes to stdout goes to stderr.
    protocol = os.dup(1)
    os.dup2(2, 1)
    preloaded_with = _preload_environment(os.environ)
    for module in preload:
        # Without torch (the kit without its serve extra), or with a broken one, each child fails on
        # its own and says why in its log.
        try:
            importlib.import_module(module)
        except Exception as exc:  # any failure only means no preload
            print(f"djl-operator-kit fork server: not preloading {module}: {exc}", file=sys.stderr)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd hears of each exit
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # its owner decides when it stops
    children: set[int] = set()
    parent = os.getpid()

    def say(message: dict[str, Any]) -> None:
        with contextlib.suppress(BrokenPipeError):  # (its owner is gone: nobody to tell)
            os.write(protocol, json.dumps(message).encode() + b"\n")

    def handle(message: dict[str, Any]) -> None:
        if "signal" in message:
            if int(message["signal"]) in children:  # never a reaped (possibly reused) pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(message["signal"]), int(message["number"]))
            return
        request = message["spawn"]
        try:
            pid = os.fork()
        except OSError as exc:
            say({"error": str(exc)})
            return
        if pid == 0:
            _run_child(request, parent, preloaded_with)  # never returns
        children.add(pid)
        say({"spawned": pid})

    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    pending = b""
    try:
        while True:
            for key, _ in selector.select():
                if key.fd == wake_r:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_r, 4096):
                            pass
                    continue
                data = os.read(0, 65536)
                if not data:
                    return
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        handle(json.loads(line))
            _reap(children, say)
    finally:
        _stop_all(children, say)


def _reap(children: set[int], say: Callable[[dict[str, Any]], None]) -> None:
    """Reap and report every child that has ended (without waiting for the others)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        say({"exited": pid, "code": _exit_code(status)})


def _stop_all(children: set[int], say: Callable[[dict[str, Any]], None]) -> None:
    """SIGTERM, up to five seconds, then SIGKILL; reaps and reports every child."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while children and time.monotonic() < deadline:
        _reap(children, say)
        if children:
            time.sleep(0.05)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(pid, 0)
            say({"exited": pid, "code": _exit_code(status)})


if __name__ == "__main__":
    _serve(sys.argv[1:])
