"""Settings of Chalice's development server, for `chalice local` only."""

from __future__ import annotations

import functools
import json
from typing import Any

from chalicelib.http.responses import error_body

# socketserver's default listen backlog is 5: with a few dozen clients connecting at once
# the kernel's accept queue overflows and connections are reset before the server sees
# them. API Gateway has no such limit; local mode should not invent one.
LISTEN_BACKLOG = 128
# What API Gateway answers for a path no route takes (MISSING_AUTHENTICATION_TOKEN, whose
# gateway response .chalice/merge-template.json sets): the same here.
NO_SUCH_ROUTE_STATUS = 404
NO_SUCH_ROUTE_BODY = error_body("not_found", "no such route")


def tune() -> None:
    """A listen backlog that takes bursts of clients, no Nagle delay on answers, and our
    404 for a path no route takes."""
    from chalice.local import ChaliceRequestHandler, RouteMatcher, ThreadedHTTPServer

    ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    # The handler writes an answer's headers and its body separately. On a kept-alive
    # connection Nagle's algorithm holds the body back until the client ACKs the headers,
    # which the client delays by up to 40 ms: every answer after the first took 40 ms.
    ChaliceRequestHandler.disable_nagle_algorithm = True
    if not hasattr(RouteMatcher.match_route, "__wrapped__"):
        RouteMatcher.match_route = _unknown_routes_not_found(  # type: ignore[method-assign]
            RouteMatcher.match_route
        )


def _unknown_routes_not_found(match_route: Any) -> Any:
    """Chalice's LocalGateway turns the ValueError of a path no route takes into
    `403 {"message": "Missing Authentication Token"}`. A LocalGatewayException instead
    passes through it, and the request handler answers with the exception's status,
    headers and body."""
    from chalice.local import LocalGatewayException

    class NoSuchRoute(LocalGatewayException):
        CODE = NO_SUCH_ROUTE_STATUS

    body = json.dumps(NO_SUCH_ROUTE_BODY).encode()

    @functools.wraps(match_route)
    def matched(self: Any, url: str) -> Any:
        try:
            return match_route(self, url)
        except ValueError:
            raise NoSuchRoute({"Content-Type": "application/json"}, body) from None

    return matched
