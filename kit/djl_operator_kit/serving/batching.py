"""Dynamic batching, as DJL Serving's batch aggregator does it.

One worker thread owns the handler (a DJL Python worker is one process
answering one call at a time). It takes the first queued request, waits up to
``max_batch_delay`` for up to ``batch_size`` requests in all, and runs them as
one call; callers block on their own slot until their answer is in.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from djl_operator_kit.serving.protocol import Response

# Runs one call of the handler for a list of requests; one Response per request.
BatchCall = Callable[[list[Any]], list[Response]]


@dataclass
class _Pending:
    request: Any
    done: threading.Event = field(default_factory=threading.Event)
    response: Response | None = None


class Batcher:
    def __init__(self, call: BatchCall, batch_size: int, max_batch_delay_s: float) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._call = call
        self.batch_size = batch_size
        self.max_batch_delay_s = max_batch_delay_s
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="djl-worker", daemon=True)
        self._thread.start()

    def submit(self, request: Any, timeout_s: float) -> Response:
        """Queue ``request`` and wait for its answer (504 after ``timeout_s``)."""
        if self._stopped.is_set():
            return Response.error(HTTPStatus.SERVICE_UNAVAILABLE, "server is shutting down")
        pending = _Pending(request)
        self._queue.put(pending)
        if not pending.done.wait(timeout_s) or pending.response is None:
            return Response.error(HTTPStatus.GATEWAY_TIMEOUT, f"no answer from the model within {timeout_s:g} s")
        return pending.response

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish what is queued, then stop the worker."""
        self._stopped.set()
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch = [first]
        deadline = time.monotonic() + self.max_batch_delay_s
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch, stop = self._collect(first)
            try:
                responses = self._call([p.request for p in batch])
                if len(responses) != len(batch):
                    raise RuntimeError(f"{len(responses)} answers for {len(batch)} requests")
            except Exception as exc:  # the worker must outlive any handler failure
                error = Response.error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")
                responses = [error] * len(batch)
            for pending, response in zip(batch, responses, strict=True):
                pending.response = response
                pending.done.set()
        self._refuse_rest()

    def _refuse_rest(self) -> None:
        """Answer whatever raced in behind the stop marker, so no caller waits out its timeout."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.response = Response.error(HTTPStatus.SERVICE_UNAVAILABLE, "server is shutting down")
                item.done.set()
