"""Black-box: the real `chalice local` gives up on a URL whose server trickles its answer,
within the fetch deadline, instead of holding the request (and a worker) for ever."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.support import TricklingServer
from tests.system.chalice_local import ChaliceLocal

DEADLINE_SECONDS = 2.0
MARGIN_SECONDS = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaliceLocal]:
    folder = tmp_path_factory.mktemp("slow-peers")
    local = ChaliceLocal(
        folder / "data",
        folder / "chalice.log",
        fetch_connect_timeout="1",
        fetch_total_timeout=f"{DEADLINE_SECONDS:g}",
        local_stream="false",
    ).start()
    try:
        yield local
    finally:
        local.stop()


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\nX-Slow: ", b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"],
    ids=["headers", "body"],
)
def test_url_whose_server_trickles_is_refused_within_the_deadline(
    server: ChaliceLocal, head: bytes
) -> None:
    # The peer would trickle for far longer than the deadline plus the margin.
    with TricklingServer(head, interval=0.2, max_seconds=20) as slow:
        started = time.monotonic()
        answer = requests.post(
            f"{server.base_url}/images",
            json={"url": slow.url("/cat.jpg")},
            headers={"Authorization": f"Bearer {server.api_key}"},
            timeout=30,
        )
        seconds = time.monotonic() - started
    print(f"chalice local refused the URL trickling its {head!r} after {seconds:.2f} s")
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "fetch_failed"
    assert "took too long" in answer.json()["error"]["message"]
    assert seconds < DEADLINE_SECONDS + MARGIN_SECONDS
