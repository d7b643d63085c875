"""Settings of Chalice's development server, for `chalice local` only."""

from __future__ import annotations

# socketserver's default listen backlog is 5: with a few dozen clients connecting at once
# the kernel's accept queue overflows and connections are reset before the server sees
# them. API Gateway has no such limit; local mode should not invent one.
LISTEN_BACKLOG = 128


def widen_listen_backlog() -> None:
    from chalice.local import ThreadedHTTPServer

    ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
