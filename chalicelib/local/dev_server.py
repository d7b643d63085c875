"""Settings of Chalice's development server, for `chalice local` only."""

from __future__ import annotations

# socketserver's default listen backlog is 5: with a few dozen clients connecting at once
# the kernel's accept queue overflows and connections are reset before the server sees
# them. API Gateway has no such limit; local mode should not invent one.
LISTEN_BACKLOG = 128


def tune() -> None:
    """A listen backlog that takes bursts of clients, and no Nagle delay on answers."""
    from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer

    ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    # The handler writes an answer's headers and its body separately. On a kept-alive
    # connection Nagle's algorithm holds the body back until the client ACKs the headers,
    # which the client delays by up to 40 ms: every answer after the first took 40 ms.
    ChaliceRequestHandler.disable_nagle_algorithm = True
