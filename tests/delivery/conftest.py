from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.delivery.support import MotoServer


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer.start(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()
