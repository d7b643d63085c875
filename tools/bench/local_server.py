"""Benchmarks against the real `chalice local` process, as `make run` starts it:
the pipeline's throughput, and the API's latency under concurrent clients. Every call
carries an API key of the server's data folder, as a client's must; the key's rate and
daily images are set far above what a run asks, so the figures never meet a 429."""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from chalicelib.bootstrap import DATABASE_FILE
from tests.system.chalice_local import ChaliceLocal
from tools.bench.photos import Photo, small_jpeg
from tools.bench.timing import peak_rss_mb, percentile

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
CLIENT_COUNTS = (1, 8, 32)
SUBMITTING_CLIENTS = 8
MIN_CALLS_PER_CLIENT = 20
# Photos submitted one at a time first: the latency a lone caller sees.
SINGLES = 10
# A bench key's quotas: far above a run's requests and images, so none is refused.
UNLIMITED = {"rate_limit_per_minute": "100000000", "daily_image_quota": "100000000"}


@contextmanager
def local_server(**settings: str) -> Iterator[tuple[ChaliceLocal, Path]]:
    """A started `chalice local` with its own data folder; yields it and its SQLite file.
    `settings` (IMAGELABELLER_<NAME>) go over UNLIMITED."""
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        environment = {
            f"IMAGELABELLER_{name.upper()}": value
            for name, value in {**UNLIMITED, **settings}.items()
        }
        server = ChaliceLocal(data_dir, Path(folder) / "chalice.log", environment=environment)
        server.start()
        try:
            yield server, data_dir / DATABASE_FILE
        finally:
            server.stop()


def keyed_session(api_key: str) -> requests.Session:
    """A session whose every call carries `api_key` (one connection, kept alive)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    return session


def submit(session: requests.Session, base_url: str, photo: Photo) -> str:
    response = session.post(
        f"{base_url}/images",
        data=photo.data,
        headers={"Content-Type": MEDIA_TYPES[photo.format]},
        timeout=60,
    )
    if response.status_code not in (200, 202):
        raise RuntimeError(f"submit answered {response.status_code}: {response.text[:300]}")
    image_id: str = response.json()["image_id"]
    return image_id


def status_counts(database: Path) -> dict[str, int]:
    """How many images are in each status, read from the server's SQLite file."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        rows = connection.execute("SELECT status, count(*) FROM images GROUP BY status")
        return {status: count for status, count in rows}


def wait_until_labelled(database: Path, expected: int, timeout: float = 600) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = status_counts(database)
        if sum(counts.values()) >= expected and counts.get("NOT_CLASSIFIED", 0) == 0:
            return counts
        time.sleep(0.01)
    raise RuntimeError(f"images still unlabelled after {timeout} s: {status_counts(database)}")


def pipeline_throughput(
    photos: Sequence[Photo], model: str, first_variant: int = 0
) -> dict[str, float]:
    """`photos` submitted by 8 clients at once, timed until every one is labelled; before
    them, the median time one photo alone takes from submit to CLASSIFIED. Each run has a
    server and data folder of its own, so the same photos can be measured again.

    Images/s = len(photos) / (last label written - first submit sent). Completion is read
    from the server's SQLite file, so waiting adds no requests to the server being measured.
    """
    count = len(photos)
    warm_up = Photo("coffee", "JPEG", 0, 0, small_jpeg(first_variant + SINGLES))
    with local_server(model=model) as (server, database):
        with keyed_session(server.api_key) as session:
            submit(session, server.base_url, warm_up)  # the model loads on the first label
            wait_until_labelled(database, 1)
            alone = [
                _submit_and_poll(session, server.base_url, small_jpeg(first_variant + n))
                for n in range(SINGLES)
            ]
        started = time.perf_counter()
        _submit_concurrently(server.base_url, server.api_key, photos, SUBMITTING_CLIENTS)
        submitted = time.perf_counter()
        counts = wait_until_labelled(database, count + 1 + SINGLES)
        finished = time.perf_counter()
        memory = peak_rss_mb(server.pid)
    if counts.get("CLASSIFIED") != count + 1 + SINGLES:
        raise RuntimeError(f"not every image was classified: {counts}")
    return {
        "images_per_s": count / (finished - started),
        "submit_s": submitted - started,
        "total_s": finished - started,
        "server_peak_rss_mb": memory,
        "one_image_ms": 1000 * statistics.median(alone),
    }


def api_latency(requests_per_level: int, first_variant: int = 0) -> dict[str, float]:
    """p50/p99 ms of a trivial route, GET /images/{id} and an upload submit (a 46 kB JPEG),
    at 1, 8 and 32 concurrent clients, each making at least 20 calls. Labelling is off in
    this server so the figures are the API's."""
    figures: dict[str, float] = {}
    variants = iter(range(first_variant, first_variant + 10**9))
    with local_server(local_stream="false") as (server, _):
        base = server.base_url
        key = server.api_key
        with keyed_session(key) as session:
            image_id = submit(session, base, Photo("coffee", "JPEG", 0, 0, small_jpeg(-1)))
        lock = threading.Lock()

        def next_jpeg() -> bytes:
            with lock:
                return small_jpeg(next(variants))

        routes: dict[str, Callable[[requests.Session], requests.Response]] = {
            "trivial": lambda s: s.get(f"{base}/health", timeout=60),
            "get": lambda s: s.get(f"{base}/images/{image_id}", timeout=60),
            "upload": lambda s: s.post(
                f"{base}/images",
                data=next_jpeg(),
                headers={"Content-Type": "image/jpeg"},
                timeout=60,
            ),
        }
        for clients in CLIENT_COUNTS:
            # Enough calls per client that all of them overlap, not a staggered start.
            total = max(requests_per_level, MIN_CALLS_PER_CLIENT * clients)
            for route, call in routes.items():
                timed_calls(call, key, clients, 2 * clients)  # connections open, caches warm
                latencies = timed_calls(call, key, clients, total)
                figures[f"{route}_c{clients}_p50_ms"] = 1000 * percentile(latencies, 0.5)
                figures[f"{route}_c{clients}_p99_ms"] = 1000 * percentile(latencies, 0.99)
    return figures


def _submit_and_poll(session: requests.Session, base_url: str, data: bytes) -> float:
    """Seconds from sending one photo to reading it CLASSIFIED, as a client polling sees."""
    started = time.perf_counter()
    image_id = submit(session, base_url, Photo("coffee", "JPEG", 0, 0, data))
    while True:
        answer = session.get(f"{base_url}/images/{image_id}", timeout=60).json()
        if answer["status"] == "CLASSIFIED":
            return time.perf_counter() - started
        if answer["status"] != "NOT_CLASSIFIED":
            raise RuntimeError(f"image {image_id} ended {answer['status']}")
        time.sleep(0.002)


def _submit_concurrently(
    base_url: str, api_key: str, photos: Sequence[Photo], clients: int
) -> list[str]:
    sessions = threading.local()

    def one(photo: Photo) -> str:
        if not hasattr(sessions, "session"):
            sessions.session = keyed_session(api_key)
        return submit(sessions.session, base_url, photo)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, photos))


def timed_calls(
    call: Callable[[requests.Session], requests.Response],
    api_key: str,
    clients: int,
    total: int,
) -> list[float]:
    """`total` calls shared by `clients` threads, each with its own connection carrying
    `api_key`."""
    per_client = max(1, total // clients)

    def client() -> list[float]:
        times = []
        with keyed_session(api_key) as session:
            for _ in range(per_client):
                started = time.perf_counter()
                response = call(session)
                elapsed = time.perf_counter() - started
                if response.status_code >= 300:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
                times.append(elapsed)
        return times

    with ThreadPoolExecutor(clients) as pool:
        results = [pool.submit(client) for _ in range(clients)]
        return [elapsed for result in results for elapsed in result.result()]
