from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller, model_spec
from chalicelib.adapters.sqlite import SqliteDatabase, SqliteLabelTable
from chalicelib.config import DEFAULT_MODEL, Limits, model_file
from tests.support import LoopbackServer, loopback_server

pytest_plugins = ["tests.fixtures.aws", "tests.fixtures.sagemaker"]


def built_onnx_labeller(model: str) -> OnnxLabeller:
    """The labeller for one of the models `make setup` builds."""
    path = model_file(model)
    assert path.is_file(), f"the model {path.name} is missing: run `make setup`"
    return OnnxLabeller(model_spec(model), path, Limits().max_image_pixels)


@pytest.fixture(scope="session")
def onnx_labeller() -> OnnxLabeller:
    """The default model's labeller (EfficientNet-Lite0)."""
    return built_onnx_labeller(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def onnx_lite2_labeller() -> OnnxLabeller:
    return built_onnx_labeller("efficientnet-lite2")


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
