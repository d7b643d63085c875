"""The models the `onnx` labeller can run, read from chalicelib/data/models.json.

That file is the one catalogue of models. config.py takes the names and the default from
here, adapters/onnx.py each model's input size. An int8 model names the float model it was
quantised from, whose input it shares. The build side, the Makefile and
tools/model/build_model.py (PyTorch's environment, which imports nothing of chalicelib),
reads the same file through tools/model/catalogue.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CATALOGUE_FILE = Path(__file__).resolve().parent.parent / "data" / "models.json"


@dataclass(frozen=True)
class CataloguedModel:
    # IMAGELABELLER_MODEL's value, and the name of its file (config.model_location).
    name: str
    # The side of the square input its weights expect, in pixels.
    input_size: int
    # The float model an int8 model was quantised from (tools/model/quantize.py, by
    # `make setup`); None for a model exported from PyTorch weights.
    quantised_from: str | None = None


@dataclass(frozen=True)
class ModelCatalogue:
    default: str
    models: tuple[CataloguedModel, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(model.name for model in self.models)


def read_catalogue(path: Path = CATALOGUE_FILE) -> ModelCatalogue:
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    catalogue = ModelCatalogue(
        default=str(raw["default"]),
        models=tuple(
            CataloguedModel(
                name=str(entry["name"]),
                input_size=int(entry["input_size"]),
                quantised_from=entry.get("quantised_from"),
            )
            for entry in raw["models"]
        ),
    )
    if catalogue.default not in catalogue.names:
        raise ValueError(f"{path}: the default {catalogue.default!r} is not one of its models")
    sizes = {model.name: model.input_size for model in catalogue.models}
    for model in catalogue.models:
        if model.quantised_from is not None and sizes.get(model.quantised_from) != (
            model.input_size
        ):
            raise ValueError(
                f"{path}: {model.name!r} must be quantised from a model of the catalogue "
                f"with its input size, not {model.quantised_from!r}"
            )
    return catalogue


CATALOGUE = read_catalogue()
