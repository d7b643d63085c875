"""The ONNX labeller alone: the model on ready tensors (the bound), and end to end."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from chalicelib.adapters.onnx import OnnxLabeller, model_spec
from chalicelib.config import Limits, model_file
from chalicelib.domain import imaging
from tools.bench.photos import mixed_photos
from tools.bench.timing import median_seconds

BATCH_SIZES = (1, 8, 32)
# Lambda at 1,769 MB has one vCPU: the labelling function's time per image at that size.
ONE_THREAD_BATCH = 16


def labeller_for(model: str, threads: int = 0) -> OnnxLabeller:
    return OnnxLabeller(
        model_spec(model), model_file(model), Limits().max_image_pixels, threads=threads
    )


def labeller_throughput(model: str, pool_size: int, repeats: int) -> dict[str, float]:
    """Images/s of `pool_size` mixed photos labelled in batches of 1, 8 and 32: on
    preprocessed tensors (model only) and from their bytes (decode + preprocess + model),
    plus ms per image end to end on one thread."""
    labeller = labeller_for(model)
    images = [photo.data for photo in mixed_photos(pool_size)]
    tensor = _preprocessed(labeller, images)
    figures: dict[str, float] = {}
    for batch in BATCH_SIZES:
        tensors = [tensor[start : start + batch] for start in range(0, pool_size, batch)]
        chunks = [images[start : start + batch] for start in range(0, pool_size, batch)]
        model_only = median_seconds(partial(_infer_all, labeller, tensors), repeats)
        end_to_end = median_seconds(partial(_label_all, labeller, chunks), repeats)
        figures[f"model_b{batch}_images_per_s"] = pool_size / model_only
        figures[f"labeller_b{batch}_images_per_s"] = pool_size / end_to_end
    one_thread = labeller_for(model, threads=1)
    chunks = [images[s : s + ONE_THREAD_BATCH] for s in range(0, pool_size, ONE_THREAD_BATCH)]
    seconds = median_seconds(partial(_label_all, one_thread, chunks), repeats)
    figures["labeller_one_thread_ms_per_image"] = 1000 * seconds / pool_size
    return figures


def _infer_all(labeller: OnnxLabeller, tensors: Sequence[np.ndarray]) -> None:
    """The batches on the labeller's lanes, side by side, as `label` runs images."""
    for _ in labeller.on_lanes(labeller.infer, tensors):
        pass


def _label_all(labeller: OnnxLabeller, chunks: Sequence[Sequence[bytes]]) -> None:
    for chunk in chunks:
        list(labeller.label(chunk, 5))


def _preprocessed(labeller: OnnxLabeller, images: Sequence[bytes]) -> np.ndarray:
    spec = labeller.spec
    decoded = [
        imaging.decode_rgb(data, Limits().max_image_pixels, spec.decode_short_side)
        for data in images
    ]
    return imaging.preprocess(decoded, spec.input_size, spec.crop_fraction)
