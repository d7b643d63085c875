"""Labeller running EfficientNet-Lite (Lite0 or Lite2, chosen by configuration) in process
with onnxruntime.

The session is created on first use and shared by every thread of the process
(onnxruntime's `run` is thread-safe). A batch's images go to a pool of lanes, one thread
per core: each lane decodes an image, cuts out its crop and runs the model on it alone,
with one onnxruntime thread, then takes the next image. On two cores this labelled web-sized
photos 12 to 25 % faster than decoding on the pool while the model ran chunks of 8 on two
threads (docs/PERFORMANCE.md): a single-threaded call does not wait on its peer thread, a
lone image runs the model as fast per image as a batch does on this CPU, and no core idles
while the other decodes. Pillow and onnxruntime both release the GIL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from chalicelib.config import ConfigError
from chalicelib.domain import imaging
from chalicelib.domain.classes import imagenet_class_names
from chalicelib.domain.errors import ImageLabellerError, LabellerUnavailable
from chalicelib.domain.model_catalogue import CATALOGUE
from chalicelib.domain.models import LabelOutcome
from chalicelib.domain.ranking import softmax, top_labels

Item = TypeVar("Item")
Result = TypeVar("Result")
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
        self._lanes = threads or os.cpu_count() or 1
        self._session: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._spec.model_id

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    def label(self, images: Iterable[bytes], top_k: int) -> Iterator[LabelOutcome]:
        names = imagenet_class_names()
        return self.on_lanes(partial(self._label_one, names=names, top_k=top_k), images)

    def on_lanes(self, work: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
        """`work` on each of `items`, on as many lanes (threads) as the labeller has, the
        results in order as each is ready. Each item goes to a lane as soon as `items`
        yields it (all of them are taken before this returns). The first exception raised
        is raised here."""
        if self._lanes < 2:
            return map(work, items)
        return self._lane_pool().map(work, items)

    def _label_one(self, data: bytes, names: Sequence[str], top_k: int) -> LabelOutcome:
        try:
            pixels = imaging.normalise_one(self._model_pixels(data))
        except ImageLabellerError as exc:
            return LabelOutcome(error=f"the image could not be decoded: {exc}")
        row = softmax(self.infer(pixels[np.newaxis]))[0]
        return LabelOutcome(top_labels(row, names, top_k))

    def _lane_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._lanes, thread_name_prefix="label")
        return self._pool

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
        # One thread per call: the lanes run calls side by side (see the module's doc).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            return onnxruntime.InferenceSession(
                str(self._model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a damaged file: onnxruntime raises its own untyped errors
            raise LabellerUnavailable(
                f"model file {self._model_path} cannot be loaded: {exc}"
            ) from exc
