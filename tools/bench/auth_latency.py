"""What the API key check costs a request: p50 and p99 ms of GET /images/{id} on two
`chalice local` servers side by side, one checking keys (the default) and one with
IMAGELABELLER_REQUIRE_API_KEYS=false, and their ratios (checked ÷ unchecked).

Both servers run at once with labelling off (the figures are the API's). Each gets the
same requests, the same Authorization header included, from 8 clients; the servers take
turns round by round, the first one alternating, so that both share the machine's noise.
The checked server pays what every keyed request pays: the key's lookup and hash check,
and its rate bucket.

`.venv/bin/python -m tools.bench.auth_latency [--requests N] [--rounds R]` prints the table;
scripts/bench.py calls auth_latency().
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import ExitStack

import requests

from tools.bench.local_server import keyed_session, local_server, submit, timed_calls
from tools.bench.photos import Photo, small_jpeg
from tools.bench.timing import percentile

CLIENTS = 8
SERVERS = {"checked": "true", "unchecked": "false"}  # IMAGELABELLER_REQUIRE_API_KEYS
TITLES = {"checked": "keys checked", "unchecked": "keys not checked (REQUIRE_API_KEYS=false)"}


def auth_latency(requests_per_client: int = 200, rounds: int = 4) -> dict[str, float]:
    """{checked,unchecked}_{p50,p99}_ms and {p50,p99}_ratio (checked ÷ unchecked), from
    `requests_per_client` GETs by each of 8 clients to each server, in `rounds` turns."""
    if requests_per_client < rounds:
        raise ValueError(f"at least one request per round: {requests_per_client} < {rounds}")
    latencies: dict[str, list[float]] = {name: [] for name in SERVERS}
    with ExitStack() as stack:
        calls = {}
        for name, required in SERVERS.items():
            server, _ = stack.enter_context(
                local_server(local_stream="false", require_api_keys=required)
            )
            # The unchecked server ignores the key, but gets the same header all the same.
            key = server.api_key
            with keyed_session(key) as session:
                image_id = submit(
                    session, server.base_url, Photo("coffee", "JPEG", 0, 0, small_jpeg(-1))
                )
            url = f"{server.base_url}/images/{image_id}"
            _check_without_key(name, url)
            calls[name] = (key, _getter(url))
        for key, call in calls.values():
            timed_calls(call, key, CLIENTS, 2 * CLIENTS)  # connections open, caches warm
        for turn in range(rounds):
            # Each client's share of this round: requests_per_client in all.
            share = requests_per_client // rounds + (turn < requests_per_client % rounds)
            order = list(SERVERS) if turn % 2 == 0 else list(reversed(SERVERS))
            for name in order:
                key, call = calls[name]
                latencies[name] += timed_calls(call, key, CLIENTS, CLIENTS * share)
    figures: dict[str, float] = {}
    for name, values in latencies.items():
        figures[f"{name}_p50_ms"] = 1000 * percentile(values, 0.5)
        figures[f"{name}_p99_ms"] = 1000 * percentile(values, 0.99)
        figures[f"{name}_requests"] = len(values)
    for level in ("p50", "p99"):
        figures[f"{level}_ratio"] = (
            figures[f"checked_{level}_ms"] / figures[f"unchecked_{level}_ms"]
        )
    return figures


def _check_without_key(name: str, url: str) -> None:
    """The servers differ as they should: only the checked one refuses a keyless call."""
    status = requests.get(url, timeout=60).status_code
    if status != {"checked": 401, "unchecked": 200}[name]:
        raise RuntimeError(f"the {name} server answered a call without a key {status}")


def _getter(url: str) -> Callable[[requests.Session], requests.Response]:
    def call(session: requests.Session) -> requests.Response:
        return session.get(url, timeout=60)

    return call


TABLE_HEADER = [f"GET /images/{{id}}, {CLIENTS} clients", "p50 (ms)", "p99 (ms)"]


def table_rows(figures: dict[str, float]) -> list[list[str]]:
    """Each server's p50 and p99, then their ratios (for TABLE_HEADER's columns)."""
    rows = [
        [TITLES[name], f"{figures[f'{name}_p50_ms']:.2f}", f"{figures[f'{name}_p99_ms']:.2f}"]
        for name in SERVERS
    ]
    rows.append(
        ["checked ÷ unchecked", f"{figures['p50_ratio']:.2f}", f"{figures['p99_ratio']:.2f}"]
    )
    return rows


def text_table(figures: dict[str, float]) -> str:
    rows = [TABLE_HEADER, *table_rows(figures)]
    first = max(len(row[0]) for row in rows)
    lines = [f"API key check, {int(figures['checked_requests'])} requests per server:"]
    lines += [f"{row[0]:<{first}}  {row[1]:>8}  {row[2]:>8}" for row in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="GETs per client and server")
    parser.add_argument("--rounds", type=int, default=4, help="turns the servers take")
    args = parser.parse_args(argv)
    print(text_table(auth_latency(args.requests, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
