"""Each API key is held to its own request rate on the real `chalice local`: a key firing
three times its rate from 8 clients at once gets its rate's worth of answers and 429s
for the rest, while another key (of the same tenant: the rate is per key) firing its
whole rate at the same moment gets every answer."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import issue_key, solid_image
from tests.system.chalice_local import ChaliceLocal

RATE_PER_MINUTE = 30
GREEDY_REQUESTS = 90
GREEDY_CLIENTS = 8
POLITE_REQUESTS = RATE_PER_MINUTE
POLITE_CLIENTS = 2
DEADLINE_SECONDS = 60


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    retry_after: list[int] = field(default_factory=list)

    def record(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 200:
            return
        if response.status_code != 429:
            self.problems.append(f"{response.status_code}: {response.text[:200]}")
            return
        problem = refusal_problem(response)
        if problem:
            self.problems.append(problem)
        else:
            self.retry_after.append(int(response.headers["Retry-After"]))


def refusal_problem(response: httpx.Response) -> str | None:
    """What is wrong with this 429, or None: it needs a Retry-After of whole seconds, at
    least 1, and our JSON error."""
    retry_after = response.headers.get("Retry-After", "")
    if not retry_after.isdigit() or int(retry_after) < 1:
        return f"429 with Retry-After {retry_after!r}"
    if response.headers.get("Content-Type") != "application/json":
        return f"429 with content type {response.headers.get('Content-Type')}"
    error = response.json().get("error", {})
    if set(error) != {"code", "message"} or error["code"] != "too_many_requests":
        return f"429 with body {response.text[:200]}"
    return None


async def fire(base_url: str, key: str, path: str, requests: int, clients: int) -> Tally:
    """`requests` GETs of `path` with `key`, shared by `clients` connections at once."""
    tally = Tally()
    left = iter(range(requests))
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30, limits=limits
    ) as http:

        async def client() -> None:
            for _ in left:
                tally.record(await http.get(path))

        await asyncio.gather(*(client() for _ in range(clients)))
    return tally


async def greedy_and_polite(base_url: str, greedy: str, polite: str, path: str) -> list[Tally]:
    together = asyncio.gather(
        fire(base_url, greedy, path, GREEDY_REQUESTS, GREEDY_CLIENTS),
        fire(base_url, polite, path, POLITE_REQUESTS, POLITE_CLIENTS),
    )
    return list(await asyncio.wait_for(together, DEADLINE_SECONDS))


def test_a_key_over_its_rate_gets_429s_with_retry_after_and_another_key_is_unaffected(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    server = ChaliceLocal(
        data_dir,
        tmp_path / "chalice.log",
        rate_limit_per_minute=str(RATE_PER_MINUTE),
        local_stream="false",
    ).start()
    try:
        greedy_key, polite_key = issue_key(data_dir, "throttle"), issue_key(data_dir, "throttle")
        started = time.monotonic()
        submitted = httpx.post(
            f"{server.base_url}/images",
            content=solid_image(),
            headers={"Content-Type": "image/png", "Authorization": f"Bearer {greedy_key}"},
            timeout=30,
        )
        assert submitted.status_code == 202, submitted.text
        path = f"/images/{submitted.json()['image_id']}"
        greedy, polite = asyncio.run(
            greedy_and_polite(server.base_url, greedy_key, polite_key, path)
        )
        seconds = time.monotonic() - started

        # The refusal is temporary: after the wait it asked for, the greedy key gets in.
        time.sleep(max(greedy.retry_after, default=1))
        after_wait = httpx.get(
            server.base_url + path, headers={"Authorization": f"Bearer {greedy_key}"}, timeout=30
        )
    finally:
        server.stop()

    print(
        f"\nrate {RATE_PER_MINUTE}/min, {seconds:.2f} s: greedy key "
        f"({GREEDY_REQUESTS} GETs, {GREEDY_CLIENTS} clients) {dict(greedy.statuses)}, "
        f"Retry-After {dict(Counter(greedy.retry_after))}; polite key "
        f"({POLITE_REQUESTS} GETs, {POLITE_CLIENTS} clients) {dict(polite.statuses)}; "
        f"after the wait {after_wait.status_code}"
    )
    assert greedy.problems == [] and polite.problems == []
    # A full bucket less the submit, plus what refilled while the run lasted.
    bucket = RATE_PER_MINUTE - 1
    refilled = int(seconds * RATE_PER_MINUTE / 60)
    assert bucket <= greedy.statuses[200] <= bucket + refilled, greedy.statuses
    assert greedy.statuses[429] == GREEDY_REQUESTS - greedy.statuses[200]
    assert polite.statuses == Counter({200: POLITE_REQUESTS})
    assert seconds < DEADLINE_SECONDS
    assert after_wait.status_code == 200, after_wait.text
