from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.sqlite import SqliteDatabase, SqliteLabelTable
from chalicelib.config import DEFAULT_MODEL_PATH, Limits
from tests.support import LoopbackServer, loopback_server

pytest_plugins = ["tests.fixtures.aws", "tests.fixtures.sagemaker"]


@pytest.fixture(scope="session")
def onnx_labeller() -> OnnxLabeller:
    assert DEFAULT_MODEL_PATH.is_file(), "the model is missing: run `make setup`"
    return OnnxLabeller(DEFAULT_MODEL_PATH, Limits().max_image_pixels)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[SqliteDatabase]:
    db = SqliteDatabase(tmp_path / "labels.sqlite3")
    yield db
    db.close()


@pytest.fixture
def sqlite_table(database: SqliteDatabase) -> SqliteLabelTable:
    return SqliteLabelTable(database)


@pytest.fixture
def folder_store(tmp_path: Path) -> FolderImageStore:
    return FolderImageStore(tmp_path / "images")


@pytest.fixture
def photo_server() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        yield server
