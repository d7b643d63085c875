"""Real `chalice local` servers for checking answers against chalicelib/http/openapi.json."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.openapi.stand_in import StandIn, stand_in_server
from tests.system.chalice_local import ChaliceLocal


def start_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, local_stream: bool
) -> ChaliceLocal:
    folder = tmp_path_factory.mktemp(name)
    # Failed fetches come back fast: nothing but loopback is ever asked for.
    return ChaliceLocal(
        folder / "data",
        folder / "chalice.log",
        fetch_connect_timeout="1",
        fetch_total_timeout="2",
        local_stream="true" if local_stream else "false",
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
