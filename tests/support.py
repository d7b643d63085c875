"""Test helpers: real photos, images made with Pillow, a loopback HTTP server."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image

from chalicelib.adapters.sqlite import SqliteDatabase
from chalicelib.adapters.sqlite_keys import SqliteKeyStore
from chalicelib.api_keys import ApiKeys
from chalicelib.domain.models import LEGACY_TENANT

# The tenant the use-case tests act for: that of records made without one (ImageRecord's
# default), so that records built by hand and records submitted meet.
TENANT = LEGACY_TENANT

# Real photos shipped by scikit-image (skimage.data), with the labels a correct
# ImageNet classifier gives them.
PHOTO_FILES = {
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "motorcycle": "motorcycle_left.png",
}
EXPECTED_TOP_LABELS = {
    "coffee": {"espresso"},
    "chelsea": {"tiger cat", "Egyptian cat", "tabby"},
    "motorcycle": {"moped", "motor scooter"},
}


def photo_png(name: str) -> bytes:
    return (resources.files("skimage.data") / PHOTO_FILES[name]).read_bytes()


def photo_jpeg(name: str, quality: int = 90) -> bytes:
    with Image.open(io.BytesIO(photo_png(name))) as image:
        return encode(image.convert("RGB"), "JPEG", quality=quality)


def jpeg_variant(data: bytes, n: int) -> bytes:
    """The same JPEG picture with different bytes (a comment segment numbered n), so that
    deduplication by SHA-256 treats each variant as a new image."""
    return jpeg_with_comment(data, f"variant {n}".encode())


def jpeg_with_comment(data: bytes, comment: bytes) -> bytes:
    """The JPEG with a comment segment (COM) right after its start marker."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return data[:2] + segment + data[2:]


def encode(image: Image.Image, format_name: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format_name, **options)
    return buffer.getvalue()


def solid_image(
    format_name: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB"
) -> bytes:
    color: Any = 128 if mode in ("L", "P", "I;16", "I", "1") else tuple([128] * len(mode))
    return encode(Image.new(mode, size, color), format_name)


def issue_key(data_dir: Path, tenant: str = "tests") -> str:
    """A new API key of `tenant` in the local data folder `data_dir` (as `imagelabeller
    keys create` makes one)."""
    database = SqliteDatabase(data_dir / "imagelabeller.sqlite3")
    try:
        return ApiKeys(SqliteKeyStore(database)).create(tenant).key
    finally:
        database.close()


def revoke_key(data_dir: Path, key: str) -> None:
    """Revoke `key` in the local data folder `data_dir` (as `imagelabeller keys revoke`)."""
    database = SqliteDatabase(data_dir / "imagelabeller.sqlite3")
    try:
        ApiKeys(SqliteKeyStore(database)).revoke(key.split("_")[1])
    finally:
        database.close()


def issue_revoked_key(data_dir: Path, tenant: str = "tests") -> str:
    """A key of `tenant` in `data_dir` that was revoked as soon as it was made."""
    key = issue_key(data_dir, tenant)
    revoke_key(data_dir, key)
    return key


def with_key(client: Any, key: str) -> Any:
    """A chalice.test.Client whose HTTP calls carry `key` as `Authorization: Bearer`,
    unless a call gives an Authorization header of its own."""
    http = client.http
    plain_request = http.request

    def request(
        method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Any:
        given = dict(headers or {})
        if not any(name.lower() == "authorization" for name in given):
            given["Authorization"] = f"Bearer {key}"
        return plain_request(method, path, headers=given, body=body)

    http.request = request
    return client


class NoNetwork:
    """Fetcher port for tests that upload: no URL may be fetched, every callback URL is
    accepted (the fetch rules have tests of their own)."""

    def fetch(self, url: str) -> bytes:
        raise AssertionError(f"no URL is fetched in this test: {url}")

    def check_url(self, url: str) -> None:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] | None = None
    # Send the body this many bytes at a time, sleeping between chunks.
    trickle_bytes: int = 0
    trickle_seconds: float = 0.0
    # Omit Content-Length (the body then ends when the connection closes).
    no_length: bool = False


class LoopbackServer:
    """An HTTP server on 127.0.0.1 answering GETs and POSTs from a path -> Reply table
    (a POST's body is read and dropped)."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Callable[[], Reply]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

            def do_GET(self) -> None:
                server.requests.append(self.path)
                route = server.routes.get(self.path, Reply(status=404, body=b"not found"))
                reply = route() if callable(route) else route
                self.send_response(reply.status)
                for name, value in (reply.headers or {}).items():
                    self.send_header(name, value)
                if reply.no_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif "Content-Length" not in (reply.headers or {}):
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send_body(reply)

            def _send_body(self, reply: Reply) -> None:
                if not reply.trickle_bytes:
                    self.wfile.write(reply.body)
                    return
                for start in range(0, len(reply.body), reply.trickle_bytes):
                    self.wfile.write(reply.body[start : start + reply.trickle_bytes])
                    self.wfile.flush()
                    time.sleep(reply.trickle_seconds)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        # A short poll: stop() waits for the serving loop to notice, after every test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes, content_type: str = "image/png") -> str:
        self.routes[path] = Reply(body=body, headers={"Content-Type": content_type})
        return self.url(path)

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def loopback_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer().start()
    try:
        yield server
    finally:
        server.stop()


def poll(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> Any:
    """Call `read` until `done(value)` or the deadline; return the last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class PostReceiver:
    """An HTTP server on 127.0.0.1 that records every request (any method) and answers
    from a script: first the `statuses` in turn, then `status` for good."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.statuses: list[int] = []
        self.status = 200
        self.headers: dict[str, str] = {}  # sent with every answer, e.g. a Location
        self.answer_body = b"thanks"
        self.delay_seconds = 0.0  # before answering at all
        self.trickle_seconds = 0.0  # between the bytes of the answer's body
        self._stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self._record_and_answer()

            def do_GET(self) -> None:  # a client that followed a redirect would show here
                self._record_and_answer()

            def _record_and_answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {name.lower(): value for name, value in self.headers.items()}
                body = self.rfile.read(length)
                receiver.requests.append(ReceivedRequest(self.command, self.path, headers, body))
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                # One request per connection (the fetcher opens a new one each time), so a
                # client that hung up is never read from again.
                self.close_connection = True
                if receiver._stopping.wait(receiver.delay_seconds):
                    return
                answer = b"" if status in (204, 304) else receiver.answer_body
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    for name, value in receiver.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    # Said, not only done: a client that kept the connection for its next
                    # request would otherwise race the close and fail to connect.
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self._send_answer(answer)

            def _send_answer(self, answer: bytes) -> None:
                if not receiver.trickle_seconds:
                    self.wfile.write(answer)
                    return
                for index in range(len(answer)):
                    self.wfile.write(answer[index : index + 1])
                    self.wfile.flush()
                    if receiver._stopping.wait(receiver.trickle_seconds):
                        return

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> PostReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()  # lets slow answers end now
        self._httpd.shutdown()
        self._httpd.server_close()


class TricklingServer:
    """A raw TCP server on 127.0.0.1 that answers every connection with `head` once the
    client has sent something, then one `drip` byte every `interval` seconds for up to
    `max_seconds`: a peer that no per-read timeout ever catches. Its threads end and its
    sockets close when the `with` block ends."""

    def __init__(
        self, head: bytes, interval: float = 0.2, max_seconds: float = 10.0, drip: bytes = b"a"
    ) -> None:
        self.head = head
        self.interval = interval
        self.max_seconds = max_seconds
        self.drip = drip
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> TricklingServer:
        self._threads[0].start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._threads[0].join(timeout=2)  # accepts nothing more after this
        for thread in self._threads[1:]:
            thread.join(timeout=2)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                peer, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._trickle, args=(peer,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _trickle(self, peer: socket.socket) -> None:
        with peer, contextlib.suppress(OSError):  # the client hung up
            peer.settimeout(1.0)
            peer.recv(65536)  # the request, or a TLS ClientHello
            peer.sendall(self.head)
            ends = time.monotonic() + self.max_seconds
            while time.monotonic() < ends and not self._stopping.wait(self.interval):
                peer.sendall(self.drip)
