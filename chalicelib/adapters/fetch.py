"""Guarded URL download: the server fetches strangers' URLs, so it must not become a proxy
into its own network, hang on a slow server, or swallow an unbounded body.

Rules (DESIGN.md, "Fetching a URL safely"): http/https only; resolve the host once, refuse
non-public addresses, and connect to the address that was checked (no second lookup a
DNS-rebinding attacker could answer differently); every redirect is checked again; connect
and total time limits; a byte limit enforced while reading.

The total time limit is a hard deadline, shared by every hop of a redirect chain: per-read
socket timeouts alone let a server that sends one byte a second hold a request for ever, so
each connection has a watchdog that shuts its socket down at the deadline, waking whatever
read or write is blocked (TLS handshake, status line, headers or body). Name resolution is
not covered: a getaddrinfo that hangs is bounded only by the system resolver's own timeouts.

A refusal tells the caller only that the host is not public; which address a name resolved
to is logged, not answered, so the service does not map an internal network for strangers.

The same rules guard the webhook POST (`post_json`), which follows no redirect at all, and
`check_url` applies the address rules to a callback URL without connecting.

The address rules are in addresses.py, the deadline's watchdog in deadline.py; urllib3
gives us control over the connection.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from urllib.parse import urljoin

import urllib3
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import HTTPError, LocationParseError
from urllib3.util import Url, parse_url
from urllib3.util.ssl_match_hostname import CertificateError

from chalicelib.adapters.addresses import IPAddress, is_public_address, resolve_host
from chalicelib.adapters.deadline import (
    Watchdog,
    WatchedHTTPConnection,
    WatchedHTTPSConnection,
)
from chalicelib.config import Limits
from chalicelib.domain.errors import FetchFailed, ImageTooLarge, UrlNotAllowed

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]
AddressPolicy = Callable[[IPAddress], bool]

ALLOWED_SCHEMES = ("http", "https")
USER_AGENT = "ImageLabeller/1.0 (+image labelling service)"
READ_CHUNK = 64 * 1024
# How much of a webhook receiver's answer is read (and thrown away) after its status.
ANSWER_LIMIT = 64 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Ask for the raw bytes: a compressed transfer encoding could inflate past the byte limit.
_IMAGE_REQUEST_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "image/*",
    "Accept-Encoding": "identity",
}
# What connecting, sending and reading can raise once urllib3's pool is not there to wrap it.
_CONNECTION_ERRORS = (HTTPError, HTTPException, OSError, CertificateError)


@dataclass(frozen=True)
class _Target:
    url: Url
    host: str
    port: int
    address: str


@dataclass(frozen=True)
class _Wording:
    """The FetchFailed messages of one kind of request."""

    too_long: str
    failed: str


_DOWNLOAD = _Wording(too_long="the download took too long", failed="could not download the URL")
_POST = _Wording(too_long="the POST took too long", failed="could not POST to the URL")


@dataclass(frozen=True)
class _Answer:
    """A response whose status and headers have arrived, and the watchdog of its connection
    (once it fired, an end of the body may be the shutdown's doing, not the server's)."""

    response: urllib3.BaseHTTPResponse
    watchdog: Watchdog


class GuardedFetcher:
    """Fetcher port: downloads one URL under the rules above."""

    def __init__(
        self,
        limits: Limits,
        allow_private: bool = False,
        resolver: Resolver = resolve_host,
        address_allowed: AddressPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._address_allowed = address_allowed or (
            (lambda _address: True) if allow_private else is_public_address
        )
        self._resolve = resolver
        self._clock = clock

    def fetch(self, url: str) -> bytes:
        deadline = self._clock() + self._limits.fetch_total_timeout
        current = url
        for _hop in range(self._limits.fetch_max_redirects + 1):
            target = self._checked_target(current)
            with self._sent(
                target, deadline, "GET", _IMAGE_REQUEST_HEADERS, None, _DOWNLOAD
            ) as answer:
                location = self._redirect_location(answer.response)
                if location is None:
                    return self._read_body(answer, deadline)
            current = urljoin(current, location)
        raise FetchFailed(f"more than {self._limits.fetch_max_redirects} redirects")

    def check_url(self, url: str) -> None:
        """Apply the scheme and address rules to `url` without connecting.

        Raises UrlNotAllowed, or FetchFailed for a host that does not resolve. Meant for a
        callback URL at submit time; `post_json` checks again when it sends, because the
        host may resolve differently by then.
        """
        self._checked_target(url)

    def post_json(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST `body` as `application/json` (plus `headers`) to `url`; return the status.

        The rules of `fetch` hold: the host is resolved once and checked, the connection
        goes to the checked address, and the connect and total time limits apply. No
        redirect is followed: a 3xx is returned like any other status. At most
        ANSWER_LIMIT bytes of the answer are read and thrown away; once the status has
        arrived it is returned, even if the rest of the answer is slow or breaks off.
        Raises UrlNotAllowed for a refused URL and FetchFailed when no status arrives.
        """
        deadline = self._clock() + self._limits.fetch_total_timeout
        target = self._checked_target(url)
        sent = HTTPHeaderDict({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        sent.update(headers)
        sent["Content-Type"] = "application/json"
        with self._sent(target, deadline, "POST", sent, body, _POST) as answer:
            self._discard_answer(answer.response, deadline)
            return answer.response.status

    def _checked_target(self, url: str) -> _Target:
        try:
            parsed = parse_url(url.strip())
        except LocationParseError:
            raise UrlNotAllowed("the URL cannot be parsed") from None
        scheme = (parsed.scheme or "").lower()
        if scheme not in ALLOWED_SCHEMES:
            raise UrlNotAllowed(f"only http and https URLs are fetched, not {scheme or 'none'!r}")
        host = (parsed.host or "").strip("[]")
        if not host:
            raise UrlNotAllowed("the URL has no host")
        port = parsed.port or (443 if scheme == "https" else 80)
        addresses = self._resolve(host, port)
        if not addresses:
            raise FetchFailed(f"host {host!r} has no address")
        for address in addresses:
            if not self._address_allowed(ipaddress.ip_address(address.split("%")[0])):
                log.warning(
                    "url refused",
                    extra={"host": host, "address": address, "reason": "non-public address"},
                )
                raise UrlNotAllowed("the URL's host resolves to a non-public address")
        return _Target(url=parsed, host=host, port=port, address=addresses[0])

    @contextlib.contextmanager
    def _sent(
        self,
        target: _Target,
        deadline: float,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None,
        wording: _Wording,
    ) -> Iterator[_Answer]:
        """One request to the checked address, on a connection of its own whose watchdog
        ends it at the deadline; no redirect followed, no retry, body unread. Everything
        is closed when the block ends."""
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise self._too_long(wording)
        watchdog = Watchdog(deadline, self._clock)
        connect_timeout = min(self._limits.fetch_connect_timeout, remaining)
        connection = _connection_for(target, watchdog, connect_timeout)
        sent = HTTPHeaderDict(headers)
        sent["Host"] = _host_header(target)
        response: urllib3.BaseHTTPResponse | None = None
        try:
            try:
                connection.connect()
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise self._too_long(wording)
                # A backstop for reads; the watchdog is what holds the deadline.
                connection.timeout = remaining
                connection.request(
                    method,
                    target.url.request_uri,
                    body=body,
                    headers=sent,
                    preload_content=False,
                    decode_content=False,
                )
                response = connection.getresponse()
            except _CONNECTION_ERRORS as exc:
                if watchdog.fired or self._clock() >= deadline:
                    raise self._too_long(wording) from None
                raise FetchFailed(f"{wording.failed}: {_reason(exc)}") from None
            if watchdog.fired:  # headers cut short by the shutdown can still parse
                raise self._too_long(wording)
            yield _Answer(response, watchdog)
        finally:
            watchdog.stop()
            if response is not None:
                response.close()
            connection.close()

    def _too_long(self, wording: _Wording) -> FetchFailed:
        limit = self._limits.fetch_total_timeout
        return FetchFailed(f"{wording.too_long} (timed out after {limit:g} s)")

    @staticmethod
    def _redirect_location(response: urllib3.BaseHTTPResponse) -> str | None:
        if response.status in REDIRECT_STATUSES:
            location = response.headers.get("Location")
            if not location:
                raise FetchFailed(f"the server answered {response.status} without a Location")
            return str(location)
        if response.status != 200:
            raise FetchFailed(f"the server answered HTTP {response.status}")
        return None

    def _read_body(self, answer: _Answer, deadline: float) -> bytes:
        response = answer.response
        limit = self._limits.max_image_bytes
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ImageTooLarge(f"the image is {declared} bytes; the limit is {limit}")
        body = bytearray()
        try:
            while chunk := response.read1(READ_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise ImageTooLarge(f"the image is over the limit of {limit} bytes")
                if self._clock() > deadline:
                    raise self._too_long(_DOWNLOAD)
        except HTTPError as exc:
            if answer.watchdog.fired or self._clock() >= deadline:
                raise self._too_long(_DOWNLOAD) from None
            raise FetchFailed(f"the download broke off: {_reason(exc)}") from None
        if answer.watchdog.fired:  # the shutdown reads as the end of a body without a length
            raise self._too_long(_DOWNLOAD)
        return bytes(body)

    def _discard_answer(self, response: urllib3.BaseHTTPResponse, deadline: float) -> None:
        """Read up to ANSWER_LIMIT bytes, so that a receiver writing a short answer is not
        cut off mid-write, and stop early at the deadline or when the answer breaks off."""
        received = 0
        with contextlib.suppress(HTTPError):
            while received < ANSWER_LIMIT and self._clock() < deadline:
                chunk = response.read1(ANSWER_LIMIT - received)
                if not chunk:
                    return
                received += len(chunk)


def _connection_for(
    target: _Target, watchdog: Watchdog, connect_timeout: float
) -> WatchedHTTPConnection:
    """A connection to the checked address; for https, TLS still checks the host name."""
    if target.url.scheme == "https":
        return WatchedHTTPSConnection(
            target.address,
            target.port,
            watchdog,
            timeout=connect_timeout,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return WatchedHTTPConnection(target.address, target.port, watchdog, timeout=connect_timeout)


def _host_header(target: _Target) -> str:
    default_port = 443 if target.url.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default_port else f"{host}:{target.port}"


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)
