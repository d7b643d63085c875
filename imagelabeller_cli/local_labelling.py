"""Labelling local files in process with the service's own ONNX labeller, in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import batched
from pathlib import Path

from chalicelib.adapters.onnx import OnnxLabeller, model_spec
from chalicelib.config import Limits, Settings
from chalicelib.domain.models import Label
from chalicelib.ports import Labeller
from imagelabeller_cli.local_files import Candidate, Refusal, read_image


class ModelMissing(Exception):
    """The ONNX model file is not there (it is built by `make setup`)."""


@dataclass(frozen=True)
class FileResult:
    """What became of one file: its labels, an error, or why it was skipped."""

    path: Path
    labels: tuple[Label, ...] = ()
    error: str | None = None
    skipped: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def onnx_labeller(settings: Settings) -> OnnxLabeller:
    if not settings.model_path.is_file():
        raise ModelMissing(
            f"the model file {settings.model_path} is missing: run `make setup` in the "
            "project folder (or set IMAGELABELLER_MODEL_PATH)"
        )
    return OnnxLabeller(
        model_spec(settings.model),
        settings.model_path,
        settings.limits.max_image_pixels,
        settings.onnx_threads,
    )


def label_files(
    files: Sequence[Candidate],
    labeller: Labeller,
    limits: Limits,
    top_k: int,
    batch_size: int,
    on_batch_done: Callable[[int], object] = lambda count: None,
) -> Iterator[FileResult]:
    """One result per file, in order, a batch at a time: one model call per batch.

    Raises LabellerUnavailable if the model itself fails (not one image)."""
    for batch in batched(files, batch_size):
        yield from _label_batch(batch, labeller, limits, top_k)
        on_batch_done(len(batch))


def _label_batch(
    batch: Sequence[Candidate], labeller: Labeller, limits: Limits, top_k: int
) -> list[FileResult]:
    results: list[FileResult | None] = []
    images: list[bytes] = []
    waiting: list[int] = []  # where each image's result goes in `results`
    for candidate in batch:
        data = read_image(candidate, limits)
        if isinstance(data, Refusal):
            results.append(_refused(candidate.path, data))
        else:
            waiting.append(len(results))
            results.append(None)
            images.append(data)
    outcomes = labeller.label(images, top_k) if images else []
    for index, outcome in zip(waiting, outcomes, strict=True):
        results[index] = FileResult(batch[index].path, labels=outcome.labels, error=outcome.error)
    return [result for result in results if result is not None]


def _refused(path: Path, refusal: Refusal) -> FileResult:
    if refusal.skipped:
        return FileResult(path, skipped=refusal.reason)
    return FileResult(path, error=refusal.reason)
