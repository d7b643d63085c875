"""The model catalogue, chalicelib/data/models.json, for the build side.

The Makefile and build_model.py read it here: build_model.py runs in PyTorch's Python 3.11
environment, where chalicelib cannot be imported, so this reads the JSON with the
standard library only (chalicelib/domain/model_catalogue.py is the service's reader).

    python3 tools/model/catalogue.py --files            # models/<name>.onnx, one per model
    python3 tools/model/catalogue.py --exported-files   # those exported from PyTorch
    python3 tools/model/catalogue.py --quantised-files  # the int8 ones (tools/model/quantize.py)

An int8 model is named after its float model, `<float name>-int8` (the Makefile's rule for
it depends on that), and shares its input size.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_FILE = ROOT / "chalicelib" / "data" / "models.json"
# Outside chalicelib/, which Chalice zips whole: the model reaches Lambda in a layer.
MODELS_FOLDER = "models"


def _entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))["models"]
    return entries


def input_sizes() -> dict[str, int]:
    """Each model's name and the side of the square input its weights expect."""
    return {entry["name"]: int(entry["input_size"]) for entry in _entries()}


def exported_input_sizes() -> dict[str, int]:
    """input_sizes() of the models exported from PyTorch weights (build_model.py)."""
    return {
        entry["name"]: int(entry["input_size"])
        for entry in _entries()
        if not entry.get("quantised_from")
    }


def quantised_sources() -> dict[str, str]:
    """Each int8 model's name and the name of the float model it is quantised from."""
    return {
        entry["name"]: entry["quantised_from"]
        for entry in _entries()
        if entry.get("quantised_from")
    }


def model_files(names: Iterable[str] | None = None) -> list[str]:
    """Where `make model` builds each model, relative to the project folder."""
    return [f"{MODELS_FOLDER}/{name}.onnx" for name in (input_sizes() if names is None else names)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    listed = parser.add_mutually_exclusive_group()
    listed.add_argument("--files", action="store_true", help="the ONNX files, space-separated")
    listed.add_argument("--exported-files", action="store_true", help="those from PyTorch")
    listed.add_argument("--quantised-files", action="store_true", help="the int8 ones")
    args = parser.parse_args(argv)
    if args.files:
        print(" ".join(model_files()))
    elif args.exported_files:
        print(" ".join(model_files(exported_input_sizes())))
    elif args.quantised_files:
        print(" ".join(model_files(quantised_sources())))
    else:
        print(" ".join(input_sizes()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
