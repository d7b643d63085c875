"""The model catalogue, chalicelib/data/models.json, for the build side.

The Makefile and build_model.py read it here: build_model.py runs in PyTorch's Python 3.11
environment, where chalicelib cannot be imported, so this reads the JSON with the
standard library only (chalicelib/domain/model_catalogue.py is the service's reader).

    python3 tools/model/catalogue.py --files   # models/<name>.onnx, one per model
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_FILE = ROOT / "chalicelib" / "data" / "models.json"
# Outside chalicelib/, which Chalice zips whole: the model reaches Lambda in a layer.
MODELS_FOLDER = "models"


def input_sizes() -> dict[str, int]:
    """Each model's name and the side of the square input its weights expect."""
    catalogue = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    return {entry["name"]: int(entry["input_size"]) for entry in catalogue["models"]}


def model_files() -> list[str]:
    """Where `make model` exports each model, relative to the project folder."""
    return [f"{MODELS_FOLDER}/{name}.onnx" for name in input_sizes()]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", action="store_true", help="the ONNX files, space-separated")
    args = parser.parse_args(argv)
    print(" ".join(model_files() if args.files else input_sizes()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
