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

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support import LoopbackServer, Reply, solid_image

PHOTO = solid_image("PNG", (96, 64))
# The longest image URL the document allows.
MAX_URL_LENGTH = 2048


class StandIn(LoopbackServer):
    """GET /photo.png: an image; GET /notes.txt: not an image; other GETs: 404.
    A POST to the callback URL (a webhook delivery) answers 204."""

    def __init__(self) -> None:
        super().__init__()
        self.base_url = self.url("")
        self.routes["/photo.png"] = Reply(body=PHOTO, headers={"Content-Type": "image/png"})
        self.routes["/notes.txt"] = Reply(
            body=b"not an image", headers={"Content-Type": "text/plain"}
        )
        self.routes["/callback"] = Reply(status=204)

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


@contextmanager
def stand_in_server() -> Iterator[StandIn]:
    server = StandIn()
    server.start()
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
