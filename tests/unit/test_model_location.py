"""Where the app finds its ONNX model: IMAGELABELLER_MODEL_DIR, else the model layer's
package `imagelabeller_models`, else the project's models/ folder (config.model_location)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.config import LAYER_MODELS_PACKAGE, MODELS_DIR, Settings, model_location

MODEL = "efficientnet-lite2"


@pytest.fixture
def layer_on_path(tmp_path: Path) -> Iterator[Path]:
    """A layer's python/ folder with the models package, on sys.path as Lambda puts it."""
    python = tmp_path / "opt" / "python"
    package = python / LAYER_MODELS_PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    sys.path.insert(0, str(python))
    importlib.invalidate_caches()
    yield package
    sys.path.remove(str(python))
    sys.modules.pop(LAYER_MODELS_PACKAGE, None)
    importlib.invalidate_caches()


def test_without_a_layer_the_model_is_in_the_projects_models_folder() -> None:
    assert model_location(MODEL, {}) == MODELS_DIR / f"{MODEL}.onnx"
    # Not inside chalicelib/, which Chalice zips whole into the function's package.
    assert Path(__file__).resolve().parents[2] / "models" == MODELS_DIR


def test_the_model_layers_package_wins_over_the_project_folder(layer_on_path: Path) -> None:
    assert model_location(MODEL, {}) == layer_on_path.resolve() / f"{MODEL}.onnx"


def test_the_layer_package_is_found_without_running_it(layer_on_path: Path) -> None:
    (layer_on_path / "__init__.py").write_text("raise RuntimeError('imported')")
    assert model_location(MODEL, {}).parent == layer_on_path.resolve()
    assert LAYER_MODELS_PACKAGE not in sys.modules


def test_imagelabeller_model_dir_wins_over_the_layer(layer_on_path: Path, tmp_path: Path) -> None:
    chosen = tmp_path / "elsewhere"
    environ = {"IMAGELABELLER_MODEL_DIR": str(chosen)}
    assert model_location(MODEL, environ) == chosen / f"{MODEL}.onnx"


def test_settings_take_the_models_location_and_model_path_still_overrides_it(
    layer_on_path: Path,
) -> None:
    chosen = Settings.from_environ({"IMAGELABELLER_MODEL": MODEL})
    assert chosen.model_path == layer_on_path.resolve() / f"{MODEL}.onnx"
    one_file = Settings.from_environ(
        {"IMAGELABELLER_MODEL": MODEL, "IMAGELABELLER_MODEL_PATH": "/srv/m.onnx"}
    )
    assert one_file.model_path == Path("/srv/m.onnx")
