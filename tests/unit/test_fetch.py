"""The guarded fetch against real sockets on loopback.

Where a test needs the loopback server to count as "public", it says so through the
fetcher's address policy; every other address still goes through the real rules.
"""

from __future__ import annotations

import gzip
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.adapters.addresses import IPAddress, is_public_address
from chalicelib.adapters.fetch import GuardedFetcher
from chalicelib.config import Limits
from chalicelib.domain.errors import FetchFailed, ImageTooLarge, UrlNotAllowed
from tests.support import LoopbackServer, PostReceiver, Reply, TricklingServer, free_port

FETCH_LOGGERS = ("chalicelib.adapters.fetch", "chalicelib.adapters.addresses")
LIMITS = Limits(max_image_bytes=10_000, fetch_total_timeout=2.0, fetch_connect_timeout=1.0)


def loopback_counts_as_public(address: IPAddress) -> bool:
    return str(address) == "127.0.0.1" or is_public_address(address)


def fetcher(limits: Limits = LIMITS) -> GuardedFetcher:
    return GuardedFetcher(limits, address_allowed=loopback_counts_as_public)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "0x7f000001",
        "2130706433",
        "0177.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "169.254.169.254",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.0.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "[fe80::1]",
        "[fc00::1]",
        "[fec0::1]",  # IPv6 site-local, which ipaddress counts as global
        "[fec0::]",
        "localhost",
    ],
)
def test_non_public_hosts_are_refused_before_connecting(host: str) -> None:
    with pytest.raises(UrlNotAllowed, match="non-public"):
        GuardedFetcher(LIMITS).fetch(f"http://{host}:9/cat.jpg")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.jpg", "file:///etc/passwd", "gopher://x/", "//example.com/a", "x"]
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        GuardedFetcher(LIMITS).fetch(url)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass_the_rule(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["fec0::1", "fec0::", "feff:ffff::1"])
def test_ipv6_site_local_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


def test_resolver_answer_is_what_gets_checked() -> None:
    rebinding = GuardedFetcher(LIMITS, resolver=lambda host, port: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(UrlNotAllowed, match="non-public"):
        rebinding.fetch("http://photos.example/cat.jpg")


@pytest.fixture
def fetch_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """caplog's records of the fetcher's modules, also once logs.configure_logging() has
    stopped the `chalicelib` loggers from propagating to the root logger caplog listens on."""
    monkeypatch.setattr(logging.getLogger("chalicelib"), "propagate", True)
    for name in FETCH_LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)
    return caplog


def fetch_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name in FETCH_LOGGERS]


def test_refusal_names_neither_host_nor_address_and_the_log_names_both(
    fetch_log: pytest.LogCaptureFixture,
) -> None:
    # Otherwise any caller could map which internal names resolve to what.
    inside = GuardedFetcher(LIMITS, resolver=lambda host, port: ["10.20.30.40"])
    with pytest.raises(UrlNotAllowed) as refused:
        inside.fetch("http://billing.corp.example/cat.jpg")
    for told in (refused.value.message, str(refused.value)):
        assert "10.20.30.40" not in told
        assert "billing.corp.example" not in told
    [record] = fetch_records(fetch_log)
    assert record.levelno == logging.WARNING
    assert record.__dict__["host"] == "billing.corp.example"
    assert record.__dict__["address"] == "10.20.30.40"


def test_unresolvable_host_is_told_without_the_resolvers_words(
    fetch_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_lookup(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "no answer from resolver 10.0.0.53")

    monkeypatch.setattr(socket, "getaddrinfo", failing_lookup)
    with pytest.raises(FetchFailed, match="cannot resolve") as failed:
        GuardedFetcher(LIMITS).fetch("http://printer.corp.example/cat.jpg")
    assert "10.0.0.53" not in failed.value.message
    [record] = fetch_records(fetch_log)
    assert record.__dict__["host"] == "printer.corp.example"
    assert "10.0.0.53" in record.__dict__["error"]


def test_image_is_downloaded(photo_server: LoopbackServer) -> None:
    url = photo_server.serve("/cat.png", b"\x89PNG" + b"x" * 5000)
    assert fetcher().fetch(url) == b"\x89PNG" + b"x" * 5000


def test_redirects_are_followed_and_checked_again(photo_server: LoopbackServer) -> None:
    photo_server.serve("/final.png", b"image bytes")
    photo_server.routes["/moved"] = Reply(status=302, headers={"Location": "/final.png"})
    assert fetcher().fetch(photo_server.url("/moved")) == b"image bytes"


def test_redirect_to_a_private_address_is_refused(photo_server: LoopbackServer) -> None:
    photo_server.routes["/go"] = Reply(
        status=301, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    with pytest.raises(UrlNotAllowed, match="non-public"):
        fetcher().fetch(photo_server.url("/go"))


def test_redirect_loop_stops_after_the_limit(photo_server: LoopbackServer) -> None:
    photo_server.routes["/loop"] = Reply(status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchFailed, match="more than 3 redirects"):
        fetcher().fetch(photo_server.url("/loop"))
    assert len(photo_server.requests) == 4


def test_error_status_is_a_fetch_failure(photo_server: LoopbackServer) -> None:
    with pytest.raises(FetchFailed, match="404"):
        fetcher().fetch(photo_server.url("/missing.jpg"))


def test_body_over_the_limit_is_refused_from_its_content_length(
    photo_server: LoopbackServer,
) -> None:
    url = photo_server.serve("/big.png", b"x" * 20_000)
    with pytest.raises(ImageTooLarge, match="20000 bytes"):
        fetcher().fetch(url)


def test_body_over_the_limit_without_content_length_is_cut_off_while_reading(
    photo_server: LoopbackServer,
) -> None:
    photo_server.routes["/stream"] = Reply(body=b"x" * 50_000, no_length=True)
    with pytest.raises(ImageTooLarge, match="over the limit"):
        fetcher().fetch(photo_server.url("/stream"))


def test_content_length_that_promises_more_than_is_sent_fails(
    photo_server: LoopbackServer,
) -> None:
    photo_server.routes["/liar"] = Reply(
        body=b"x" * 100, headers={"Content-Length": "5000", "Connection": "close"}
    )
    with pytest.raises(FetchFailed, match="broke off"):
        fetcher().fetch(photo_server.url("/liar"))


def test_trickling_server_hits_the_total_time_limit(photo_server: LoopbackServer) -> None:
    photo_server.routes["/slow"] = Reply(body=b"x" * 60, trickle_bytes=1, trickle_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="too long"):
        GuardedFetcher(SHORT_LIMITS, allow_private=True).fetch(photo_server.url("/slow"))
    assert time.monotonic() - started < SHORT_LIMITS.fetch_total_timeout + 1.5


# --- the hard deadline, against peers that trickle one byte at a time ---

# The servers trickle for 10 s; a per-read timeout never fires, only the deadline does.
SLOW_PEER_LIMITS = Limits(fetch_total_timeout=0.5, fetch_connect_timeout=0.5)
SLOW_PEER_BOUND = 1.5
SLOW_HEADERS = b"HTTP/1.1 200 OK\r\nX-Slow: "


def seconds_to_fail(call: Callable[[], object]) -> tuple[FetchFailed, float]:
    started = time.monotonic()
    with pytest.raises(FetchFailed) as failed:
        call()
    return failed.value, time.monotonic() - started


def assert_held_the_deadline(error: FetchFailed, seconds: float, what: str) -> None:
    print(
        f"{what}: refused after {seconds:.2f} s (deadline {SLOW_PEER_LIMITS.fetch_total_timeout} s)"
    )
    assert "took too long" in error.message
    assert SLOW_PEER_LIMITS.fetch_total_timeout - 0.05 <= seconds < SLOW_PEER_BOUND


def test_headers_trickled_a_byte_at_a_time_end_at_the_deadline() -> None:
    with TricklingServer(SLOW_HEADERS) as server:
        slow = GuardedFetcher(SLOW_PEER_LIMITS, allow_private=True)
        error, seconds = seconds_to_fail(lambda: slow.fetch(server.url("/cat.jpg")))
    assert_held_the_deadline(error, seconds, "slow headers")


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 1000\r\n",
        b"Connection: close\r\n",  # the shutdown must not pass for the end of the body
        b"Transfer-Encoding: chunked\r\n\r\n3e8",
    ],
    ids=["content-length", "until-close", "chunked"],
)
def test_body_trickled_a_byte_at_a_time_ends_at_the_deadline(framing: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n" + framing + b"\r\n"
    with TricklingServer(head) as server:
        slow = GuardedFetcher(SLOW_PEER_LIMITS, allow_private=True)
        error, seconds = seconds_to_fail(lambda: slow.fetch(server.url("/cat.png")))
    assert_held_the_deadline(error, seconds, "slow body")


def test_tls_handshake_trickled_a_byte_at_a_time_ends_at_the_deadline() -> None:
    # A handshake record header announcing 16 KiB, whose bytes then come one at a time.
    with TricklingServer(b"\x16\x03\x03\x40\x00") as server:
        slow = GuardedFetcher(SLOW_PEER_LIMITS, allow_private=True)
        error, seconds = seconds_to_fail(lambda: slow.fetch(server.url("/", scheme="https")))
    assert_held_the_deadline(error, seconds, "slow TLS handshake")


@pytest.mark.parametrize("head", [b"HTTP/1.1 200 ", SLOW_HEADERS], ids=["status-line", "headers"])
def test_post_json_to_a_receiver_trickling_its_status_ends_at_the_deadline(head: bytes) -> None:
    with TricklingServer(head) as server:
        slow = GuardedFetcher(SLOW_PEER_LIMITS, allow_private=True)
        error, seconds = seconds_to_fail(lambda: slow.post_json(server.url("/hooks"), b"{}", {}))
    assert_held_the_deadline(error, seconds, "slow webhook status")


def test_deadline_is_shared_by_the_hops_of_a_redirect(photo_server: LoopbackServer) -> None:
    with TricklingServer(SLOW_HEADERS) as server:

        def slow_redirect() -> Reply:
            time.sleep(0.3)
            return Reply(status=302, headers={"Location": server.url("/")})

        photo_server.routes["/moved"] = slow_redirect
        slow = GuardedFetcher(SLOW_PEER_LIMITS, allow_private=True)
        error, seconds = seconds_to_fail(lambda: slow.fetch(photo_server.url("/moved")))
    assert_held_the_deadline(error, seconds, "slow redirect target")
    assert seconds < 0.3 + SLOW_PEER_LIMITS.fetch_total_timeout  # no new deadline per hop


def test_unresolvable_host_is_a_fetch_failure() -> None:
    with pytest.raises(FetchFailed, match="resolve"):
        GuardedFetcher(LIMITS).fetch("http://no-such-host.invalid/cat.jpg")


def test_compressed_bodies_are_not_inflated(photo_server: LoopbackServer) -> None:
    # A gzip bomb inflates to gigabytes; the fetcher asks for identity and keeps raw bytes.
    bomb = gzip.compress(b"\x00" * 5_000_000)
    photo_server.routes["/bomb"] = Reply(body=bomb, headers={"Content-Encoding": "gzip"})
    assert fetcher().fetch(photo_server.url("/bomb")) == bomb


# --- check_url and post_json (webhook callbacks) ---


def _parametrised(test: object, name: str) -> list[Any]:
    """The values a test above is parametrised over, so that the tests below share its
    cases and the list above stays the one place to add one."""
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize" and mark.args[0] == name:
            return list(mark.args[1])
    raise LookupError(f"{test} is not parametrised over {name!r}")


NON_PUBLIC_HOSTS = _parametrised(test_non_public_hosts_are_refused_before_connecting, "host")
REFUSED_SCHEME_URLS = _parametrised(test_only_http_and_https_are_fetched, "url")
SHORT_LIMITS = Limits(fetch_total_timeout=0.5, fetch_connect_timeout=0.5)


@pytest.fixture
def receiver() -> Iterator[PostReceiver]:
    with PostReceiver() as server:
        yield server


@pytest.mark.parametrize("host", NON_PUBLIC_HOSTS)
def test_check_url_refuses_non_public_hosts(host: str) -> None:
    with pytest.raises(UrlNotAllowed, match="non-public"):
        GuardedFetcher(LIMITS).check_url(f"https://{host}/hooks/labels")


@pytest.mark.parametrize("url", REFUSED_SCHEME_URLS)
def test_check_url_refuses_other_schemes(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        GuardedFetcher(LIMITS).check_url(url)


def test_check_url_accepts_a_public_address_without_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_connection(*args: object) -> None:
        raise AssertionError("check_url connected")

    monkeypatch.setattr("socket.socket.connect", no_connection)
    monkeypatch.setattr("socket.socket.connect_ex", no_connection)
    lookups: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return [host]

    GuardedFetcher(LIMITS, resolver=resolver).check_url("https://93.184.216.34/hooks/labels")
    assert lookups == [("93.184.216.34", 443)]


def test_check_url_of_an_unresolvable_host_is_a_fetch_failure() -> None:
    with pytest.raises(FetchFailed, match="resolve"):
        GuardedFetcher(LIMITS).check_url("https://no-such-host.invalid/hooks")


def test_post_json_sends_the_body_and_headers_and_returns_the_status(
    receiver: PostReceiver,
) -> None:
    receiver.status = 201
    body = b'{"image_id":"42"}'
    status = fetcher().post_json(
        receiver.url("/hooks/labels"), body, {"X-Hook": "yes", "Content-Type": "text/plain"}
    )
    assert status == 201
    [request] = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/hooks/labels", body)
    assert request.headers["content-type"] == "application/json"  # not the caller's
    assert request.headers["content-length"] == str(len(body))
    assert request.headers["x-hook"] == "yes"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_post_json_returns_a_redirect_without_following_it(
    receiver: PostReceiver, status: int
) -> None:
    receiver.status = status
    receiver.headers = {"Location": "/elsewhere"}
    assert fetcher().post_json(receiver.url("/hooks/labels"), b"{}", {}) == status
    assert [request.path for request in receiver.requests] == ["/hooks/labels"]


def test_post_json_to_a_private_address_is_refused_before_connecting(
    receiver: PostReceiver,
) -> None:
    with pytest.raises(UrlNotAllowed, match="non-public"):
        GuardedFetcher(LIMITS).post_json(receiver.url("/hooks/labels"), b"{}", {})
    assert receiver.requests == []


def test_post_json_to_a_closed_port_is_a_fetch_failure() -> None:
    with pytest.raises(FetchFailed, match="could not POST"):
        fetcher().post_json(f"http://127.0.0.1:{free_port()}/hooks", b"{}", {})


def test_post_json_to_a_slow_receiver_hits_the_time_limit(receiver: PostReceiver) -> None:
    receiver.delay_seconds = 10.0
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="timed out"):
        fetcher(SHORT_LIMITS).post_json(receiver.url("/hooks/labels"), b"{}", {})
    assert time.monotonic() - started < SHORT_LIMITS.fetch_total_timeout + 1.0


def test_post_json_returns_the_status_once_it_arrives_even_if_the_answer_trickles(
    receiver: PostReceiver,
) -> None:
    # The receiver has taken the delivery; failing now would only make the sender repeat it.
    receiver.answer_body = b"x" * 100
    receiver.trickle_seconds = 0.1
    started = time.monotonic()
    assert fetcher(SHORT_LIMITS).post_json(receiver.url("/hooks/labels"), b"{}", {}) == 200
    assert time.monotonic() - started < SHORT_LIMITS.fetch_total_timeout + 1.0
