"""Settings of Chalice's development server, for `chalice local` only."""

from __future__ import annotations

import functools
import json
from typing import Any

from chalicelib.config import Limits
from chalicelib.http.responses import error_body
from chalicelib.http.upload_form import max_form_bytes, too_large

# socketserver's default listen backlog is 5: with a few dozen clients connecting at once
# the kernel's accept queue overflows and connections are reset before the server sees
# them. API Gateway has no such limit; local mode should not invent one.
LISTEN_BACKLOG = 128
# What API Gateway answers for a path no route takes (MISSING_AUTHENTICATION_TOKEN, whose
# gateway response .chalice/merge-template.json sets): the same here.
NO_SUCH_ROUTE_STATUS = 404
NO_SUCH_ROUTE_BODY = error_body("not_found", "no such route")
# An upload form refused on its Content-Length: what is read (and dropped, a chunk at a
# time) of its body after the 413, so that a client that sends the body before reading
# the answer gets the 413 rather than a reset connection. Past this, the connection is
# closed unread.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
DRAIN_CHUNK_BYTES = 64 * 1024
DRAIN_TIMEOUT_SECONDS = 5.0


def tune(max_image_bytes: int = Limits.max_image_bytes) -> None:
    """A listen backlog that takes bursts of clients, no Nagle delay on answers, our
    404 for a path no route takes, and a 413 for an upload form whose Content-Length is
    over what an image of `max_image_bytes` needs, before its body is read (Chalice's
    handler would read all of it into memory first)."""
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
    handler: Any = ChaliceRequestHandler
    handler.max_upload_form_bytes = max_form_bytes(max_image_bytes)
    handler.max_image_bytes = max_image_bytes
    if not hasattr(handler.do_POST, "__wrapped__"):
        handler.do_POST = _oversized_uploads_refused(handler.do_POST)
        handler.handle_expect_100 = _oversized_uploads_refused_at_once(handler.handle_expect_100)


def _oversized_upload(handler: Any) -> int | None:
    """The Content-Length of a POST to an upload route that is over the form limit."""
    path = str(handler.path).split("?", 1)[0].strip("/").split("/")
    if handler.command != "POST" or len(path) != 2 or path[0] != "uploads":
        return None
    try:
        length = int(handler.headers.get("content-length", "0"))
    except ValueError:
        return None
    return length if length > handler.max_upload_form_bytes else None


def _refuse(handler: Any, length: int) -> None:
    error = too_large(length, handler.max_image_bytes)
    body = json.dumps(error_body(error.code, error.message)).encode()
    handler.close_connection = True
    handler.send_response(413)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()


def _oversized_uploads_refused(do_post: Any) -> Any:
    @functools.wraps(do_post)
    def refused_or_handled(self: Any) -> None:
        length = _oversized_upload(self)
        if length is None:
            do_post(self)
            return
        _refuse(self, length)
        _drain(self, min(length, DRAIN_LIMIT_BYTES))

    return refused_or_handled


def _oversized_uploads_refused_at_once(handle_expect_100: Any) -> Any:
    """A client that asks before sending the body (`Expect: 100-continue`, as curl does
    for large forms) gets the 413 instead of `100 Continue`, and sends nothing."""

    @functools.wraps(handle_expect_100)
    def refused_or_continued(self: Any) -> bool:
        length = _oversized_upload(self)
        if length is None:
            return bool(handle_expect_100(self))
        _refuse(self, length)
        return False

    return refused_or_continued


def _drain(handler: Any, length: int) -> None:
    """Read and drop `length` bytes of the request body, a chunk at a time."""
    handler.connection.settimeout(DRAIN_TIMEOUT_SECONDS)
    try:
        while length > 0:
            chunk = handler.rfile.read(min(length, DRAIN_CHUNK_BYTES))
            if not chunk:
                return
            length -= len(chunk)
    except OSError:
        return


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
