"""A hard deadline on one HTTP connection, enforced on its socket: per-read timeouts never
fire while a peer trickles one byte a second, so a watchdog shuts the socket down at the
deadline, waking whatever read or write is blocked (TLS handshake, status line, headers
or body)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection


class Watchdog:
    """Shuts one connection's socket down at the deadline, which wakes any read or write
    blocked on it (a per-read timeout never fires while a peer trickles bytes).

    It keeps a duplicate of the TCP socket: wrapping a socket in TLS detaches the original
    socket object, and a descriptor the connection has closed could already belong to
    another connection. Shutting the duplicate down shuts the one TCP connection down,
    whichever object reads from it; the duplicate is closed by `stop` and by nothing else.
    One watchdog watches one connection, connected once.
    """

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self._deadline = deadline
        self._clock = clock
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._timer: threading.Timer | None = None
        self._stopped = False
        self.fired = False

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._socket = sock.dup()
            delay = max(0.0, self._deadline - self._clock())
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._stopped or self._socket is None:
                return
            self.fired = True
            with contextlib.suppress(OSError):  # the peer may have closed it already
                self._socket.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
            if self._socket is not None:
                self._socket.close()


class WatchedHTTPConnection(HTTPConnection):
    """An HTTPConnection that hands its TCP socket to a watchdog as soon as it exists."""

    def __init__(self, host: str, port: int, watchdog: Watchdog, **options: Any) -> None:
        super().__init__(host, port, **options)
        self._watchdog = watchdog

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        try:
            self._watchdog.watch(sock)
        except BaseException:
            sock.close()
            raise
        return sock


class WatchedHTTPSConnection(WatchedHTTPConnection, HTTPSConnection):
    """The same for https, so that the deadline covers the TLS handshake too."""
