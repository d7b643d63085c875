"""Fixtures every folder shares, and the cost marker of every test.

Each collected test gets exactly one cost marker (pyproject.toml describes them), so that
`pytest -m fast` (`make check`) is the everyday loop and `make test` runs them all:

- an explicit one on the test (`@pytest.mark.slow`) wins;
- else its file or folder decides (COST_BY_PATH, the longest matching path);
- else its fixtures, direct or not: PyTorch's environment (`build_python`) makes it
  `pytorch`, an exported model (`exported_models`, `onnx_labeller`, `onnx_lite2_labeller`)
  `model`;
- else it is `fast`: .venv alone, in process, no exported model. A test that needs a model
  to run but not its weights takes `tiny_labeller` or `tiny_model_env`
  (tests/fixtures/tiny_model.py) and stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller, model_spec
from chalicelib.adapters.sqlite import SqliteDatabase, SqliteLabelTable
from chalicelib.config import DEFAULT_MODEL, MODEL_NAMES, Limits, model_file
from tests.support import LoopbackServer, loopback_server

pytest_plugins = ["tests.fixtures.aws", "tests.fixtures.sagemaker", "tests.fixtures.tiny_model"]

ROOT = Path(__file__).resolve().parents[1]
BUILD_PYTHON = ROOT / ".build-venv" / "bin" / "python"

COST_MARKERS = ("fast", "model", "pytorch", "slow", "emulator", "package", "browser")
# Whole files and folders of one cost; None: no rule here, the fixtures decide.
COST_BY_PATH: dict[str, str | None] = {
    "tests/bench/": "slow",
    "tests/cli/test_api_commands.py": "slow",
    # Runs `scripts/deploy --dry-run` as a process, once per stage and case.
    "tests/delivery/test_dry_run.py": "slow",
    "tests/delivery/test_stacks_on_moto.py": "emulator",
    "tests/infrastructure/test_moto_stacks.py": "emulator",
    "tests/load/": "slow",
    "tests/openapi/": "slow",
    "tests/openapi/test_document.py": None,
    "tests/package/": "package",
    # MiniStack runs the deploy for real: scripts/deploy, the Lambda code, the system tests.
    "tests/rehearsal/": "emulator",
    "tests/system/": "slow",
    "tests/web/test_page.py": "browser",
}
COST_BY_FIXTURE = {
    "build_python": "pytorch",
    # Downloaded beside the build environment (the Makefile's SDK_WHEEL).
    "sagemaker_sdk_wheel": "pytorch",
    "exported_models": "model",
    "onnx_labeller": "model",
    "onnx_lite2_labeller": "model",
}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under `-m fast`, files and folders of another cost are not even imported."""
    if config.option.markexpr != "fast" or not collection_path.is_relative_to(config.rootpath):
        return None
    path = collection_path.relative_to(config.rootpath).as_posix()
    if collection_path.is_dir():
        path += "/"
        if any(other.startswith(path) and other != path for other in COST_BY_PATH):
            return None  # some of it has a cost of its own: look file by file
    return True if path_cost(path) else None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        explicit = {mark.name for mark in item.iter_markers() if mark.name in COST_MARKERS}
        if len(explicit) > 1:
            raise pytest.UsageError(f"{item.nodeid} has more than one cost marker: {explicit}")
        if not explicit:
            item.add_marker(cost_of(item, config.rootpath))


def path_cost(path: str) -> str | None:
    """The cost COST_BY_PATH gives the file or folder (a folder's path ends with /)."""
    matching = [prefix for prefix in COST_BY_PATH if path.startswith(prefix)]
    return COST_BY_PATH[max(matching, key=len)] if matching else None


def cost_of(item: pytest.Item, root: Path) -> str:
    by_path = path_cost(item.path.relative_to(root).as_posix())
    if by_path is not None:
        return by_path
    fixtures = set(getattr(item, "fixturenames", ()))
    by_fixture = {cost for name, cost in COST_BY_FIXTURE.items() if name in fixtures}
    for cost in ("pytorch", "model"):
        if cost in by_fixture:
            return cost
    return "fast"


@pytest.fixture(scope="session")
def exported_models() -> dict[str, Path]:
    """Every model's ONNX file, as `make model` exports it from the PyTorch weights."""
    files = {name: model_file(name) for name in MODEL_NAMES}
    missing = [path.name for path in files.values() if not path.is_file()]
    assert not missing, f"the models {missing} are missing: run `make model`"
    return files


@pytest.fixture(scope="session")
def build_python() -> Path:
    """The Python of .build-venv, the environment with PyTorch (for the ONNX export)."""
    assert BUILD_PYTHON.exists(), "the build environment is missing: `make test` makes it"
    return BUILD_PYTHON


def exported_labeller(model: str, files: dict[str, Path]) -> OnnxLabeller:
    return OnnxLabeller(model_spec(model), files[model], Limits().max_image_pixels)


@pytest.fixture(scope="session")
def onnx_labeller(exported_models: dict[str, Path]) -> OnnxLabeller:
    """The default model's labeller (EfficientNet-Lite0)."""
    return exported_labeller(DEFAULT_MODEL, exported_models)


@pytest.fixture(scope="session")
def onnx_lite2_labeller(exported_models: dict[str, Path]) -> OnnxLabeller:
    return exported_labeller("efficientnet-lite2", exported_models)


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
