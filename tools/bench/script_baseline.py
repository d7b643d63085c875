"""The straightforward script a user would write instead of running the service.

For each image's bytes: Pillow opens it, converts it to RGB, resizes its short side to
crop / 0.875 with BICUBIC, cuts out the centre crop (the model's input size), normalises
(x - 127) / 128 to NCHW float32; onnxruntime runs the same .onnx file with its default
session options, in batches of 8, in one process; then softmax and the top 5. Nothing of
chalicelib is used but the catalogue (each model's input size) and where the file is.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from chalicelib.config import model_file
from chalicelib.domain.model_catalogue import CATALOGUE

BATCH = 8
TOP = 5
CROP_FRACTION = 0.875


def input_size(model: str) -> int:
    return next(entry.input_size for entry in CATALOGUE.models if entry.name == model)


def session_for(model: str) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(model_file(model)), providers=["CPUExecutionProvider"])


def pixels(data: bytes, crop: int) -> np.ndarray:
    """One image as the model's HWC uint8 input, the way the script's author writes it."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    short = round(crop / CROP_FRACTION)
    scale = short / min(image.size)
    size = (max(short, round(image.width * scale)), max(short, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    left = (image.width - crop) // 2
    top = (image.height - crop) // 2
    return np.asarray(image.crop((left, top, left + crop, top + crop)))


def label_all(session: Any, images: Sequence[bytes], crop: int) -> list[list[tuple[int, float]]]:
    """Top-5 (class index, probability) of every image, in batches of 8."""
    name = session.get_inputs()[0].name
    answers = []
    for start in range(0, len(images), BATCH):
        batch = np.stack([pixels(data, crop) for data in images[start : start + BATCH]])
        tensor = ((batch.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2)
        logits = session.run(None, {name: np.ascontiguousarray(tensor)})[0]
        exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = exponentials / exponentials.sum(axis=1, keepdims=True)
        for row in probabilities:
            top = np.argsort(row)[::-1][:TOP]
            answers.append([(int(index), float(row[index])) for index in top])
    return answers


def script_throughput(model: str, images: Sequence[bytes]) -> dict[str, float]:
    """Images/s of the script over `images`: decode + preprocess + inference, one pass,
    after its session is created and has run one batch (as a script's first image would
    pay for, once)."""
    session = session_for(model)
    crop = input_size(model)
    label_all(session, images[:BATCH], crop)
    started = time.perf_counter()
    label_all(session, images, crop)
    seconds = time.perf_counter() - started
    return {"images_per_s": len(images) / seconds, "images": float(len(images))}
