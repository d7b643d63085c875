"""How closely each int8 model follows its float model, and how much faster it runs.

    python -m tools.model.agreement   # after `make setup`; prints a Markdown table

Both models label the held-apart photos of tools/model/quantize.py (never the calibration
photos) through OnnxLabeller, as the service does. For each int8 model it prints:

- top-1 agreement: the share of photos whose best class is the same for both models;
- mean |Δ top-1 score|: over the photos, the absolute difference between the two models'
  probabilities for the float model's best class;
- each model alone at batch 8 on preprocessed tensors (images/s, the best of five runs of
  2 s, float and int8 taking turns).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chalicelib.adapters.onnx import OnnxLabeller, model_spec
from chalicelib.config import Limits, model_file
from chalicelib.domain import imaging
from chalicelib.domain.classes import imagenet_class_names
from chalicelib.domain.model_catalogue import CATALOGUE
from chalicelib.domain.ranking import softmax
from tools.model.quantize import HELD_APART_PHOTOS, model_pixels

BATCH = 8


@dataclass(frozen=True)
class Agreement:
    model: str
    float_model: str
    photos: int
    agreeing: int
    mean_score_difference: float
    # The photos whose best class differs: (photo, float's class, int8's class).
    disagreements: tuple[tuple[str, str, str], ...]

    @property
    def top1_agreement(self) -> float:
        return self.agreeing / self.photos


def cpu_has_vnni() -> bool:
    """Whether this CPU has VNNI (AVX-512 or AVX), with which onnxruntime's uint8 x int8
    products do not saturate; /proc/cpuinfo's flags (Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def quantised_models() -> dict[str, str]:
    """Each int8 model of the catalogue and the float model it was quantised from."""
    return {m.name: m.quantised_from for m in CATALOGUE.models if m.quantised_from}


def labeller(name: str) -> OnnxLabeller:
    return OnnxLabeller(model_spec(name), model_file(name), Limits().max_image_pixels)


def held_apart_tensor(name: str) -> np.ndarray:
    """The held-apart photos as the model `name` sees them: one NCHW batch."""
    spec = model_spec(name)
    return imaging.normalise(
        [model_pixels(spec, photo.read_bytes()) for photo in HELD_APART_PHOTOS]
    )


def measure_agreement(int8_model: str) -> Agreement:
    float_model = quantised_models()[int8_model]
    tensor = held_apart_tensor(float_model)
    expected = softmax(labeller(float_model).infer(tensor))
    actual = softmax(labeller(int8_model).infer(tensor))
    best, best_int8 = expected.argmax(axis=1), actual.argmax(axis=1)
    rows = np.arange(len(best))
    names = imagenet_class_names()
    return Agreement(
        model=int8_model,
        float_model=float_model,
        photos=len(best),
        agreeing=int((best == best_int8).sum()),
        mean_score_difference=float(np.abs(expected[rows, best] - actual[rows, best]).mean()),
        disagreements=tuple(
            (photo.name, names[f], names[q])
            for photo, f, q in zip(HELD_APART_PHOTOS, best, best_int8, strict=True)
            if f != q
        ),
    )


def images_per_second(names: Sequence[str], runs: int = 5, seconds: float = 2.0) -> list[float]:
    """Each model alone on a ready batch of BATCH photos: the best of `runs` timed runs.

    The models take turns, run by run, so that a neighbour's load on a shared machine
    slows them alike."""
    models = [labeller(name) for name in names]
    batches = [held_apart_tensor(name)[:BATCH] for name in names]
    for model, batch in zip(models, batches, strict=True):
        model.infer(batch)  # the session is created and warmed outside the timing
    best = [0.0] * len(models)
    for _ in range(runs):
        for index, (model, batch) in enumerate(zip(models, batches, strict=True)):
            count, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds:
                model.infer(batch)
                count += BATCH
            best[index] = max(best[index], count / elapsed)
    return best


def report(models: list[str]) -> str:
    lines = [
        f"{len(HELD_APART_PHOTOS)} held-apart photos; speed: the model alone at batch {BATCH}; "
        f"this CPU {'has' if cpu_has_vnni() else 'has no'} VNNI (without it, int8 products "
        "saturate and agreement drops)",
        "",
        "| int8 model | top-1 agreement | mean abs Δ top-1 score | float images/s "
        "| int8 images/s | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for name in models:
        agreement = measure_agreement(name)
        float_speed, int8_speed = images_per_second([agreement.float_model, name])
        lines.append(
            f"| {name} | {agreement.top1_agreement:.1%} ({agreement.agreeing}/{agreement.photos})"
            f" | {agreement.mean_score_difference:.3f} | {float_speed:.0f} | {int8_speed:.0f}"
            f" | {int8_speed / float_speed:.2f}x |"
        )
        notes += [
            f"{name}: {photo}: float {expected!r}, int8 {actual!r}"
            for photo, expected, actual in agreement.disagreements
        ]
    return "\n".join([*lines, "", *(notes or ["every photo agrees"])])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    models = sorted(quantised_models())
    parser.add_argument("--models", nargs="+", default=models, choices=models)
    args = parser.parse_args(argv)
    print(report(args.models))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
