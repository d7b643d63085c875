"""An asyncio load generator for the public API: several clients, a mix of good and bad
submits and reads, and a tally by kind of request and status. Every request carries the
API key but the `no_key` ones, which must be refused.

Used by tests/load/test_load.py (short, in `make test`) and scripts/load.py (longer, by hand).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import jpeg_variant, photo_jpeg

# kind of request -> (share of requests, the statuses it may get)
MIX: dict[str, tuple[float, set[int]]] = {
    "upload": (0.30, {202}),
    # The same URL's bytes again: answered from the first submit (200).
    "submit_url": (0.15, {200, 202}),
    "read_known": (0.20, {200}),
    "read_unknown": (0.05, {404}),
    "invalid_json": (0.08, {400}),
    "forbidden_url": (0.07, {400}),
    "not_an_image": (0.08, {415}),
    "truncated_jpeg": (0.07, {415}),
    # A read of a known image without the key.
    "no_key": (0.05, {401}),
}


@dataclass
class LoadReport:
    requests: int = 0
    seconds: float = 0.0
    by_kind_and_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.by_kind_and_status.items() if status >= 500)

    def by_status(self) -> Counter[int]:
        totals: Counter[int] = Counter()
        for (_, status), count in self.by_kind_and_status.items():
            totals[status] += count
        return totals


class LoadClient:
    def __init__(self, http: httpx.AsyncClient, photo_url: str, report: LoadReport) -> None:
        self.http = http
        self.photo_url = photo_url
        self.report = report
        self.jpeg = photo_jpeg("chelsea")
        self.uploads = 0
        self.calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "upload": self.upload,
            "submit_url": lambda: self.http.post("/images", json={"url": self.photo_url}),
            "read_known": self.read_known,
            "read_unknown": lambda: self.http.get("/images/00000000-0000-4000-8000-000000000000"),
            "invalid_json": lambda: self.http.post(
                "/images", content=b"{oops", headers={"Content-Type": "application/json"}
            ),
            "forbidden_url": lambda: self.http.post("/images", json={"url": "file:///etc/passwd"}),
            "not_an_image": lambda: self.http.post(
                "/images", content=b"hello", headers={"Content-Type": "image/png"}
            ),
            "truncated_jpeg": lambda: self.http.post(
                "/images", content=self.jpeg[:8000], headers={"Content-Type": "image/jpeg"}
            ),
            "no_key": self.read_without_key,
        }

    async def upload(self) -> httpx.Response:
        self.uploads += 1  # new bytes every time, so each upload is a new image
        return await self.http.post(
            "/images",
            content=jpeg_variant(self.jpeg, self.uploads),
            headers={"Content-Type": "image/jpeg"},
        )

    async def read_known(self) -> httpx.Response:
        return await self.http.get(f"/images/{self.report.accepted[-1]}")

    async def read_without_key(self) -> httpx.Response:
        request = self.http.build_request("GET", f"/images/{self.report.accepted[-1]}")
        request.headers.pop("Authorization", None)
        return await self.http.send(request)

    async def one(self, kind: str) -> None:
        if kind in ("read_known", "no_key") and not self.report.accepted:
            kind = "upload"  # nothing to read yet
        response = await self.calls[kind]()
        self.report.requests += 1
        self.report.by_kind_and_status[(kind, response.status_code)] += 1
        problem = check(kind, response)
        if problem:
            self.report.unexpected.append(problem)
        elif kind in ("upload", "submit_url"):
            self.report.accepted.append(response.json()["image_id"])


def check(kind: str, response: httpx.Response) -> str | None:
    """Why this answer is wrong for this kind of request, or None."""
    allowed = MIX[kind][1]
    if response.status_code not in allowed:
        return f"{kind}: {response.status_code} {response.text[:200]}"
    if response.headers.get("content-type") != "application/json":
        return f"{kind}: content type {response.headers.get('content-type')}"
    body: Any = response.json()
    if response.status_code >= 400 and set(body.get("error", {})) != {"code", "message"}:
        return f"{kind}: error body {body}"
    if response.status_code == 401 and "Bearer" not in response.headers.get("WWW-Authenticate", ""):
        return f"{kind}: 401 without WWW-Authenticate: Bearer"
    return None


def bearer(api_key: str | None) -> dict[str, str]:
    """The header every request carries; none without a key (a server with keys off)."""
    return {} if api_key is None else {"Authorization": f"Bearer {api_key}"}


async def run_load(
    base_url: str,
    photo_url: str,
    requests: int,
    concurrency: int,
    seed: int = 7,
    *,
    api_key: str | None = None,
) -> LoadReport:
    report = LoadReport()
    rng = random.Random(seed)
    kinds = list(MIX)
    plan = rng.choices(kinds, weights=[MIX[kind][0] for kind in kinds], k=requests)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for kind in plan:
        queue.put_nowait(kind)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=bearer(api_key), timeout=60, limits=limits
    ) as http:
        client = LoadClient(http, photo_url, report)

        async def worker() -> None:
            while not queue.empty():
                await client.one(queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        report.seconds = time.perf_counter() - started
    return report


async def unfinished(
    base_url: str, image_ids: list[str], timeout: float, *, api_key: str | None = None
) -> list[str]:
    """The ids still NOT_CLASSIFIED (or unreadable) when the deadline passes."""
    deadline = time.monotonic() + timeout
    pending = list(image_ids)
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(api_key), timeout=30) as http:
        while pending and time.monotonic() < deadline:
            still = []
            for image_id in pending:
                response = await http.get(f"/images/{image_id}")
                if response.status_code != 200 or response.json()["status"] == "NOT_CLASSIFIED":
                    still.append(image_id)
            pending = still
            if pending:
                await asyncio.sleep(0.2)
    return pending


def format_report(report: LoadReport) -> str:
    lines = [
        f"{report.requests} requests in {report.seconds:.1f} s "
        f"({report.requests / max(report.seconds, 1e-9):.0f} requests/s), "
        f"{len(report.accepted)} images accepted",
        "by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(report.by_status().items())),
    ]
    for (kind, status), count in sorted(report.by_kind_and_status.items()):
        lines.append(f"  {kind:<15} {status}  {count}")
    return "\n".join(lines)
