"""Labeller running EfficientNet-Lite (Lite0 or Lite2, chosen by configuration) in process
with onnxruntime.

The session is created on first use and shared by every thread of the process
(onnxruntime's `run` is thread-safe). A batch is decoded on a thread pool and run through
the model in chunks as their images are ready, so that the model works on one chunk while
the pool decodes the next.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.config import ConfigError
from chalicelib.domain import imaging
from chalicelib.domain.classes import imagenet_class_names
from chalicelib.domain.errors import ImageLabellerError, LabellerUnavailable
from chalicelib.domain.model_catalogue import CATALOGUE
from chalicelib.domain.models import LabelOutcome
from chalicelib.domain.ranking import softmax, top_labels

# Images per model call within a batch: small enough that the model starts while the rest
# of the batch is still decoding, large enough to run at its batched speed.
INFERENCE_CHUNK = 8
# The reference EfficientNet evaluation crops the centre input_size / (input_size + 32) of
# the short side (tensorflow/tpu, models/official/efficientnet/preprocessing.py, as it was
# when the Lite checkpoints were published).
CROP_PADDING = 32


@dataclass(frozen=True)
class ModelSpec:
    """One EfficientNet-Lite variant: its name and the input its weights expect.

    Every Lite variant normalises the same way, (x - 127) / 128 (imaging.normalise).
    """

    name: str
    input_size: int

    @property
    def crop_fraction(self) -> float:
        return self.input_size / (self.input_size + CROP_PADDING)

    @property
    def decode_short_side(self) -> int:
        """JPEGs decode at reduced scale while the crop still covers input_size pixels."""
        return round(self.input_size / self.crop_fraction)

    @property
    def model_id(self) -> str:
        return f"{self.name}/onnx"


# Every model of the catalogue (chalicelib/data/models.json).
MODELS: dict[str, ModelSpec] = {
    model.name: ModelSpec(model.name, input_size=model.input_size) for model in CATALOGUE.models
}


def model_spec(name: str) -> ModelSpec:
    """The variant called `name`; ConfigError names the choices for any other name."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}: expected one of {', '.join(sorted(MODELS))}"
        ) from None


class OnnxLabeller:
    def __init__(
        self, model: ModelSpec, model_path: Path, max_pixels: int, threads: int = 0
    ) -> None:
        self._spec = model
        self._model_path = model_path
        self._max_pixels = max_pixels
        self._threads = threads or os.cpu_count() or 1
        self._session: Any = None
        self._decode_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._spec.model_id

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    def label(self, images: Sequence[bytes], top_k: int) -> list[LabelOutcome]:
        names = imagenet_class_names()
        outcomes: list[LabelOutcome] = []
        ready: list[int] = []  # indexes into outcomes awaiting the model
        inputs: list[np.ndarray] = []
        for index, pixels in enumerate(self._all_model_inputs(images)):
            if isinstance(pixels, LabelOutcome):
                outcomes.append(pixels)
                continue
            outcomes.append(LabelOutcome())
            ready.append(index)
            inputs.append(pixels)
            if len(inputs) == INFERENCE_CHUNK:
                self._label_chunk(inputs, ready, outcomes, names, top_k)
        if inputs:
            self._label_chunk(inputs, ready, outcomes, names, top_k)
        return outcomes

    def _label_chunk(
        self,
        inputs: list[np.ndarray],
        ready: list[int],
        outcomes: list[LabelOutcome],
        names: Sequence[str],
        top_k: int,
    ) -> None:
        """Run the model on the decoded inputs, put their labels in place, and empty both
        lists for the next chunk."""
        rows = softmax(self.infer(np.stack(inputs)))
        for index, row in zip(ready, rows, strict=True):
            outcomes[index] = LabelOutcome(top_labels(row, names, top_k))
        inputs.clear()
        ready.clear()

    def _all_model_inputs(self, images: Sequence[bytes]) -> Iterator[np.ndarray | LabelOutcome]:
        """Each image's model input (CHW float32), or the outcome saying why it has none,
        in order, as each is ready.

        Decoding costs more than the model, and Pillow decodes and resizes without the GIL,
        so the images are decoded on as many threads as the model runs on, all handed to the
        pool at once: it goes on decoding while the caller runs the model on what is ready.
        Each is cut down to the model's input as soon as it is decoded: no more than one
        full-size image per thread is ever held in memory."""
        if len(images) < 2 or self._threads < 2:
            return (self._model_input_or_error(data) for data in images)
        return self._decoders().map(self._model_input_or_error, images)

    def _model_input_or_error(self, data: bytes) -> np.ndarray | LabelOutcome:
        try:
            return imaging.normalise_one(self._model_pixels(data))
        except ImageLabellerError as exc:
            return LabelOutcome(error=f"the image could not be decoded: {exc}")

    def _decoders(self) -> ThreadPoolExecutor:
        if self._decode_pool is None:
            with self._lock:
                if self._decode_pool is None:
                    self._decode_pool = ThreadPoolExecutor(
                        self._threads, thread_name_prefix="decode"
                    )
        return self._decode_pool

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Raw logits for a preprocessed NCHW float32 batch."""
        session = self._loaded_session()
        try:
            return session.run(None, {session.get_inputs()[0].name: tensor})[0]  # type: ignore[no-any-return]
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise LabellerUnavailable(f"the model failed to run: {exc}") from exc

    def _model_pixels(self, data: bytes) -> np.ndarray:
        spec = self._spec
        image = imaging.decode_rgb(data, self._max_pixels, min_short_side=spec.decode_short_side)
        return imaging.crop_and_resize(image, spec.input_size, spec.crop_fraction)

    def _loaded_session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._create_session()
        return self._session

    def _create_session(self) -> Any:
        import onnxruntime  # imported here so the app starts without paying for it

        if not self._model_path.is_file():
            raise LabellerUnavailable(
                f"model file {self._model_path} is missing; build it with `make model`"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        try:
            return onnxruntime.InferenceSession(
                str(self._model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a damaged file: onnxruntime raises its own untyped errors
            raise LabellerUnavailable(
                f"model file {self._model_path} cannot be loaded: {exc}"
            ) from exc
