"""Real `chalice local` servers for checking answers against chalicelib/http/openapi.json."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.openapi.stand_in import StandIn, stand_in_server
from tests.system.chalice_local import ChaliceLocal

# Far above the few hundred requests a run makes with one key: a 429 would stand in for
# the answer the request was generated to get. test_documented_flows.py has its own 429.
RATE_LIMIT_PER_MINUTE = "100000"


def start_server(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    local_stream: bool,
    rate_limit_per_minute: str = RATE_LIMIT_PER_MINUTE,
) -> ChaliceLocal:
    """A started `chalice local` of the local stage; requests carry its `api_key`."""
    folder = tmp_path_factory.mktemp(name)
    # Failed fetches come back fast: nothing but loopback is ever asked for.
    return ChaliceLocal(
        folder / "data",
        folder / "chalice.log",
        fetch_connect_timeout="1",
        fetch_total_timeout="2",
        local_stream="true" if local_stream else "false",
        rate_limit_per_minute=rate_limit_per_minute,
    ).start()


@pytest.fixture(scope="package")
def stand_in() -> Iterator[StandIn]:
    with stand_in_server() as server:
        yield server


@pytest.fixture(scope="package")
def labelling_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaliceLocal]:
    """The whole service: accepted images are labelled."""
    server = start_server(tmp_path_factory, "labelling", local_stream=True)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaliceLocal]:
    """The API without its labelling worker: every accepted image stays NOT_CLASSIFIED,
    and nothing is ever called back."""
    server = start_server(tmp_path_factory, "idle", local_stream=False)
    yield server
    server.stop()


@pytest.fixture
def throttled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaliceLocal]:
    """The API, idle, where a key may make one request a minute."""
    server = start_server(
        tmp_path_factory, "throttled", local_stream=False, rate_limit_per_minute="1"
    )
    yield server
    server.stop()
