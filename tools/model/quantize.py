"""Quantise an exported float model to int8 (build step, in .venv with onnxruntime).

A static QDQ quantisation with onnxruntime's own tools: int8 weights (per channel), uint8
activations (MinMax ranges) calibrated on real photos that packages ship, preprocessed
exactly as the service preprocesses them (OnnxLabeller: decode, centre crop, resize,
normalise). The stem convolution and the classifier stay in float. The Makefile runs it
for each int8 model of the catalogue:

    python -m tools.model.quantize --model efficientnet-lite0-int8 \
        --source models/efficientnet-lite0.onnx --out models/efficientnet-lite0-int8.onnx

The photos are split once, here, and never move between the sets:

- CALIBRATION_PHOTOS (7, and each mirrored): motorcycle_right, retina, hubble_deep_field,
  ihc, grass, gravel and cell from scikit-image's `skimage.data`;
- HELD_APART_PHOTOS (15), which only tools/model/agreement.py and the tests label:
  astronaut, brick, camera, chelsea, clock_motion, coffee, coins, microaneurysms, moon,
  motorcycle_left, page, rocket and text from `skimage.data`, and grace_hopper and
  Minduka_Present_Blue_Pack from matplotlib's sample data.

Every one is present in the installed wheel, without a download.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from chalicelib.adapters.onnx import ModelSpec, model_spec
from chalicelib.config import Limits
from chalicelib.domain import imaging
from chalicelib.domain.model_catalogue import CATALOGUE


@dataclass(frozen=True)
class PackagedPhoto:
    """A photo file inside an installed package."""

    package: str
    path: str

    @property
    def name(self) -> str:
        return Path(self.path).stem

    def read_bytes(self) -> bytes:
        return (resources.files(self.package) / self.path).read_bytes()


def _skimage(*files: str) -> tuple[PackagedPhoto, ...]:
    return tuple(PackagedPhoto("skimage.data", name) for name in files)


CALIBRATION_PHOTOS = _skimage(
    "motorcycle_right.png",
    "retina.jpg",
    "hubble_deep_field.jpg",
    "ihc.png",
    "grass.png",
    "gravel.png",
    "cell.png",
)
HELD_APART_PHOTOS = (
    *_skimage(
        "astronaut.png",
        "brick.png",
        "camera.png",
        "chelsea.png",
        "clock_motion.png",
        "coffee.png",
        "coins.png",
        "microaneurysms.png",
        "moon.png",
        "motorcycle_left.png",
        "page.png",
        "rocket.jpg",
        "text.png",
    ),
    PackagedPhoto("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    PackagedPhoto("matplotlib", "mpl-data/sample_data/Minduka_Present_Blue_Pack.png"),
)
# Per-channel weight scales measured far better than one scale per tensor: Lite0's top-1
# agreed with float on 14 of the 15 held-apart photos against 7.
PER_CHANNEL = True


def model_pixels(spec: ModelSpec, data: bytes) -> np.ndarray:
    """The model's input pixels for one image, as OnnxLabeller._model_pixels cuts them."""
    image = imaging.decode_rgb(data, Limits().max_image_pixels, spec.decode_short_side)
    return imaging.crop_and_resize(image, spec.input_size, spec.crop_fraction)


def calibration_batches(spec: ModelSpec) -> list[np.ndarray]:
    """Each calibration photo and its mirror image, one preprocessed NCHW batch each."""
    batches = []
    for photo in CALIBRATION_PHOTOS:
        pixels = model_pixels(spec, photo.read_bytes())
        mirrored = np.asarray(Image.fromarray(pixels).transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        batches.append(imaging.normalise([pixels, mirrored]))
    return batches


def quantise(spec: ModelSpec, source: Path, out: Path, per_channel: bool = PER_CHANNEL) -> None:
    """Write the int8 QDQ version of `source` (a float model of input `spec`) to `out`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Photos(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self, batches: Sequence[np.ndarray], input_name: str) -> None:
            self._feeds: Iterator[dict[str, np.ndarray]] = iter(
                [{input_name: batch} for batch in batches]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        prepared = Path(work) / "prepared.onnx"
        # Shape inference and graph fusion first, as onnxruntime recommends before quantising.
        quant_pre_process(str(source), str(prepared))
        quantised = Path(work) / "quantised.onnx"
        # The first and the last layer stay in float, the usual recipe: with the classifier
        # quantised Lite0's top-1 score moved twice as far from float's (0.13 against 0.07).
        quantize_static(
            str(prepared),
            str(quantised),
            Photos(calibration_batches(spec), _input_name(prepared)),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_first_and_last_layers(prepared),
        )
        # Readable by all, as a Lambda layer's files must be; replaced whole, never half.
        os.chmod(quantised, 0o644)
        os.replace(quantised, out)


def _input_name(model: Path) -> str:
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    return str(graph.input[0].name)


def _first_and_last_layers(model: Path) -> list[str]:
    """The names of the stem convolution and the classifier (the first Conv, the last Gemm)."""
    import onnx

    nodes = onnx.load(str(model), load_external_data=False).graph.node
    convolutions = [node.name for node in nodes if node.op_type == "Conv"]
    classifiers = [node.name for node in nodes if node.op_type == "Gemm"]
    return [convolutions[0], classifiers[-1]]


def main(argv: list[str]) -> int:
    quantised = {m.name: m.quantised_from for m in CATALOGUE.models if m.quantised_from}
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, choices=sorted(quantised))
    parser.add_argument("--source", type=Path, required=True, help="the float model's file")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    quantise(model_spec(args.model), args.source, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
