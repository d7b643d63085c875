"""Chalice's development server, as local mode tunes it."""

from __future__ import annotations

import json
import socketserver

import pytest
from chalice.app import Chalice
from chalice.local import ChaliceRequestHandler, RouteMatcher, ThreadedHTTPServer
from chalice.test import Client

from chalicelib.local import dev_server


def test_tuned_server_takes_bursts_and_answers_without_nagle_delay() -> None:
    dev_server.tune()
    assert ThreadedHTTPServer.request_queue_size == dev_server.LISTEN_BACKLOG
    # StreamRequestHandler.setup sets TCP_NODELAY on each connection when this is true.
    assert issubclass(ChaliceRequestHandler, socketserver.StreamRequestHandler)
    assert ChaliceRequestHandler.disable_nagle_algorithm is True


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/no-such-route", {}),
        ("POST", "/images/a/b/c", {}),
        ("GET", "/no-such-route", {"Authorization": "Bearer x"}),
    ],
)
def test_a_path_no_route_takes_answers_our_404(
    method: str, path: str, headers: dict[str, str]
) -> None:
    dev_server.tune()
    app = Chalice("dev-server-test")

    @app.route("/images/{image_id}")
    def image(image_id: str) -> dict[str, str]:
        return {"image_id": image_id}

    with Client(app) as client:
        missing = client.http.request(method, path, headers=headers)
        found = client.http.get("/images/abc")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/json"
    assert json.loads(missing.body) == {"error": {"code": "not_found", "message": "no such route"}}
    assert (found.status_code, json.loads(found.body)) == (200, {"image_id": "abc"})


def test_tuning_twice_wraps_the_route_matcher_once() -> None:
    dev_server.tune()
    tuned = RouteMatcher.match_route
    dev_server.tune()
    assert RouteMatcher.match_route is tuned
