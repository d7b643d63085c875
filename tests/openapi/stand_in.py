"""The internet, as far as generated requests are concerned: one loopback HTTP server.

Schemathesis makes up URLs (`url`, `urls`, `callback_url`), and the local stage fetches
private addresses, so a made-up URL could send the server anywhere. Before each request
goes out, `keep_on_loopback` points every URL the server could act on at this server
instead, so the only traffic is on 127.0.0.1:

- an image URL with a ':' becomes one of a few stand-in URLs (an image, a 404, not an
  image, a refused scheme), padded past the length limit if the generated one was that
  long, so it stays as valid or invalid as schemathesis generated it. One without a ':'
  has no scheme and is refused before any lookup, so it is sent as generated.
- any `callback_url` becomes the stand-in's callback URL: the server posts to it later, by
  rules this test cannot see, so its refusals are not probed here.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import solid_image

PHOTO = solid_image("PNG", (96, 64))
# The longest image URL the document allows.
MAX_URL_LENGTH = 2048


class StandIn:
    """GET /photo.png: an image; GET /notes.txt: not an image; other GETs: 404.
    Any POST (a webhook delivery) answers 204."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == "/photo.png":
                    self._answer(200, PHOTO, "image/png")
                elif self.path == "/notes.txt":
                    self._answer(200, b"not an image", "text/plain")
                else:
                    self._answer(404, b"not found", "text/plain")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._answer(204, b"", None)

            def _answer(self, status: int, body: bytes, content_type: str | None) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def image_url_for(self, generated: str) -> str:
        """A loopback stand-in for a generated URL; the same one for the same value."""
        choices = (
            f"{self.base_url}/photo.png",  # accepted (202, then 200 for the same bytes)
            f"{self.base_url}/missing",  # 404 there: fetch_failed
            f"{self.base_url}/notes.txt",  # not an image
            "ftp://127.0.0.1/photo.png",  # refused before any connection: url_not_allowed
        )
        return choices[zlib.crc32(generated.encode("utf-8", "replace")) % len(choices)]

    @property
    def callback_url(self) -> str:
        return f"{self.base_url}/callback"

    def start(self) -> StandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def stand_in_server() -> Iterator[StandIn]:
    server = StandIn().start()
    try:
        yield server
    finally:
        server.stop()


def same_length_class(url: str, generated: str) -> str:
    """`url`, padded (in its query) past the longest URL the document allows when the
    generated value was that long, so a too-long value stays too long."""
    if len(generated) <= MAX_URL_LENGTH or len(url) >= len(generated):
        return url
    return f"{url}?pad={'x' * (len(generated) - len(url) - 5)}"


def keep_on_loopback(values: Any, stand_in: StandIn) -> Any:
    """`values` (a JSON body or the query) with every URL the server would act on made
    loopback; `values` itself when there was none. Query values may be lists (a repeated
    parameter)."""
    if not isinstance(values, dict):
        return values

    def image_url(value: Any) -> Any:
        if isinstance(value, list):
            return [image_url(item) for item in value]
        if isinstance(value, str) and ":" in value:
            return same_length_class(stand_in.image_url_for(value), value)
        return value

    kept = dict(values)
    for name in ("url", "urls"):
        if name in kept:
            kept[name] = image_url(kept[name])
    if "callback_url" in kept:
        kept["callback_url"] = stand_in.callback_url
    return values if kept == values else kept
