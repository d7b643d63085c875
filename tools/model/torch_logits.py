"""PyTorch logits for a saved input batch (build environment only; used by the parity test).

python tools/model/torch_logits.py --variant lite0 INPUT.npy OUTPUT.npy
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from build_model import load_pretrained


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="lite0")
    parser.add_argument("input")
    parser.add_argument("output")
    args = parser.parse_args(argv)
    model = load_pretrained(args.variant)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.load(args.input)))
    np.save(args.output, logits.numpy())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
