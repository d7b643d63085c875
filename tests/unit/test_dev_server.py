"""Chalice's development server, as local mode tunes it."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest
import requests
from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer, RouteMatcher, ThreadedHTTPServer
from chalice.test import Client

from chalicelib.http.upload_form import max_form_bytes
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


@pytest.fixture
def upload_server() -> Iterator[tuple[str, list[bytes]]]:
    """Chalice's development server on a free port, tuned for images of at most 1,000
    bytes, with an upload route that records the bodies it is handed."""
    dev_server.tune(1_000)
    app = Chalice("dev-server-upload-test")
    received: list[bytes] = []

    @app.route("/uploads/{image_id}", methods=["POST"], content_types=["*/*"])
    def receive(image_id: str) -> dict[str, str]:
        assert app.current_request is not None
        raw = app.current_request.raw_body
        received.append(raw.encode() if isinstance(raw, str) else bytes(raw or b""))
        return {"image_id": image_id}

    server = LocalDevServer(app, Config.create(), "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=5)
        dev_server.tune()  # back to the default limit for the other tests of this process


def test_an_upload_form_too_long_for_the_limit_gets_413_before_its_body_is_read(
    upload_server: tuple[str, list[bytes]],
) -> None:
    base_url, received = upload_server
    too_long = max_form_bytes(1_000) + 1
    answer = requests.post(f"{base_url}/uploads/abc", data=b"x" * too_long, timeout=10)
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error"]["code"] == "image_too_large"
    assert received == []
    fits = requests.post(f"{base_url}/uploads/abc", data=b"x" * 500, timeout=10)
    assert fits.status_code == 200 and received == [b"x" * 500]
    other_route = requests.post(f"{base_url}/images", data=b"x" * too_long, timeout=10)
    assert other_route.status_code == 404  # only the upload route is limited here


def test_a_client_that_asks_first_gets_413_and_sends_no_body(
    upload_server: tuple[str, list[bytes]],
) -> None:
    """`Expect: 100-continue` (curl's way with a large form): the answer comes before the
    body, which the client then never sends; here it claims to have five gigabytes."""
    base_url, received = upload_server
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /uploads/abc HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            b"boundary=b\r\nContent-Length: 5000000000\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(body)["error"]["code"] == "image_too_large"
    assert received == []
