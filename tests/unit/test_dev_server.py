"""Chalice's development server, as local mode tunes it."""

from __future__ import annotations

import socketserver

from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer

from chalicelib.local import dev_server


def test_tuned_server_takes_bursts_and_answers_without_nagle_delay() -> None:
    dev_server.tune()
    assert ThreadedHTTPServer.request_queue_size == dev_server.LISTEN_BACKLOG
    # StreamRequestHandler.setup sets TCP_NODELAY on each connection when this is true.
    assert issubclass(ChaliceRequestHandler, socketserver.StreamRequestHandler)
    assert ChaliceRequestHandler.disable_nagle_algorithm is True
