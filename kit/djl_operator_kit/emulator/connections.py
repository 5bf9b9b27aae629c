"""Threaded servers that can really stop.

boto3 keeps HTTP/1.1 connections alive, so a plain ThreadingMixIn server leaves a
handler thread parked on every idle connection after ``shutdown()``. This mixin
remembers accepted sockets, cuts them on :meth:`close_connections`, and makes
``server_close()`` join every handler thread -- so stopping an emulator leaves no
stray thread behind.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from typing import Any


class ConnectionTrackingMixin:
    """Put before ``socketserver.ThreadingMixIn`` in the bases."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._conn_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._closing = False
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            if self._closing:
                self.shutdown_request(request)
                return
            self._conns.add(request)
        super().process_request(request, client_address)  # type: ignore[misc]

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._conns.discard(request)
        super().shutdown_request(request)  # type: ignore[misc]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer (a Ctrl-C'd demo, a timed-out call, or
        # close_connections itself) is not an emulator bug: no traceback for it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[misc]

    def close_connections(self) -> None:
        """Refuse new connections and cut the open ones, waking their handler threads."""
        with self._conn_lock:
            self._closing = True
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):  # already closed by the peer
                conn.shutdown(socket.SHUT_RDWR)
