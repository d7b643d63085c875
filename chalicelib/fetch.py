"""Guarded URL download: the server fetches strangers' URLs, so it must not become a proxy
into its own network, hang on a slow server, or swallow an unbounded body.

Rules (DESIGN.md, "Fetching a URL safely"): http/https only; resolve the host once, refuse
non-public addresses, and connect to the address that was checked (no second lookup a
DNS-rebinding attacker could answer differently); every redirect is checked again; connect
and total time limits; a byte limit enforced while reading.

The same rules guard the webhook POST (`post_json`), which follows no redirect at all, and
`check_url` applies the address rules to a callback URL without connecting.

Address rules use the standard library's `ipaddress` tables plus the cases it leaves to
the caller (IPv4 inside IPv6, multicast); urllib3 gives us control over the connection.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

import urllib3
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import HTTPError, LocationParseError
from urllib3.util import Url, parse_url

from chalicelib.config import Limits
from chalicelib.errors import FetchFailed, ImageTooLarge, UrlNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
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


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (literal IPs in any spelling included)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"cannot resolve host {host!r}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if int(address) >> 32 == 0 and int(address) > 1:  # IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


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
            response = self._send(target, deadline, "GET", _IMAGE_REQUEST_HEADERS, None, _DOWNLOAD)
            try:
                location = self._redirect_location(response)
                if location is None:
                    return self._read_body(response, deadline)
            finally:
                response.release_conn()
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
        response = self._send(target, deadline, "POST", sent, body, _POST)
        try:
            self._discard_answer(response, deadline)
        finally:
            response.close()
        return response.status

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
                raise UrlNotAllowed(f"{host!r} resolves to a non-public address ({address})")
        return _Target(url=parsed, host=host, port=port, address=addresses[0])

    def _send(
        self,
        target: _Target,
        deadline: float,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None,
        wording: _Wording,
    ) -> urllib3.BaseHTTPResponse:
        """One request to the checked address; no redirect followed, no retry, body unread."""
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise FetchFailed(wording.too_long)
        timeout = urllib3.Timeout(
            connect=min(self._limits.fetch_connect_timeout, remaining), read=remaining
        )
        pool = _pool_for(target, timeout)
        sent = HTTPHeaderDict(headers)
        sent["Host"] = _host_header(target)
        try:
            return pool.urlopen(
                method,
                target.url.request_uri,
                body=body,
                headers=sent,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
            )
        except HTTPError as exc:
            raise FetchFailed(f"{wording.failed}: {_reason(exc)}") from None

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

    def _read_body(self, response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
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
                    raise FetchFailed(_DOWNLOAD.too_long)
        except HTTPError as exc:
            raise FetchFailed(f"the download broke off: {_reason(exc)}") from None
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


def _pool_for(target: _Target, timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
    if target.url.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, maxsize=1)


def _host_header(target: _Target) -> str:
    default_port = 443 if target.url.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default_port else f"{host}:{target.port}"


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)
