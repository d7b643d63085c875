"""Labelling in batches with the ONNX labeller: order, batching, refusals. The real Lite0
where the labels matter, the tiny stand-in graph where only order and batching do."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.config import Limits, Settings
from chalicelib.domain.models import LabelOutcome
from imagelabeller_cli.local_files import candidates
from imagelabeller_cli.local_labelling import FileResult, ModelMissing, label_files, onnx_labeller
from tests.cli.support import PhotoFolder, write_photo_folder
from tests.support import EXPECTED_TOP_LABELS


@pytest.fixture
def photos(tmp_path: Path) -> PhotoFolder:
    return write_photo_folder(tmp_path / "photos")


def labelled(
    photos: PhotoFolder, labeller: OnnxLabeller, batch_size: int, batches: list[int]
) -> list[FileResult]:
    files = candidates([photos.root])
    return list(label_files(files, labeller, Limits(), 5, batch_size, batches.append))


def test_results_keep_the_file_order_whatever_the_batch_size(
    photos: PhotoFolder, tiny_labeller: OnnxLabeller
) -> None:
    one_at_a_time = labelled(photos, tiny_labeller, 1, [])
    all_at_once = labelled(photos, tiny_labeller, 16, [])

    expected_order = [
        photos.coffee,
        photos.notes,
        photos.broken,
        photos.chelsea,
        photos.motorcycle,
    ]
    assert [result.path for result in one_at_a_time] == expected_order
    assert [result.path for result in all_at_once] == expected_order
    for single, batched in zip(one_at_a_time, all_at_once, strict=True):
        assert [label.name for label in single.labels] == [label.name for label in batched.labels]
        for a, b in zip(single.labels, batched.labels, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)
        assert (single.error, single.skipped) == (batched.error, batched.skipped)


def test_each_file_gets_its_own_outcome_within_a_batch(
    photos: PhotoFolder, onnx_labeller: OnnxLabeller
) -> None:
    results = {result.path: result for result in labelled(photos, onnx_labeller, 16, [])}

    assert results[photos.coffee].labels[0].name == "espresso"
    assert results[photos.chelsea].labels[0].name in EXPECTED_TOP_LABELS["chelsea"]
    assert results[photos.motorcycle].labels[0].name in EXPECTED_TOP_LABELS["motorcycle"]
    assert results[photos.notes].skipped and not results[photos.notes].failed
    assert results[photos.broken].failed and not results[photos.broken].labels


def test_progress_is_reported_once_per_batch(
    photos: PhotoFolder, tiny_labeller: OnnxLabeller
) -> None:
    batches: list[int] = []

    labelled(photos, tiny_labeller, 2, batches)

    assert batches == [2, 2, 1]


def test_a_batch_of_only_refused_files_never_calls_the_model(photos: PhotoFolder) -> None:
    files = candidates([photos.notes, photos.broken])

    results = list(label_files(files, UncallableModel(), Limits(), 5, 16))

    assert [result.path for result in results] == [photos.notes, photos.broken]
    assert all(result.failed for result in results)  # named files: errors, not skips


class UncallableModel:
    @property
    def model_id(self) -> str:
        return "uncallable"

    def label(self, images: Iterable[bytes], top_k: int) -> list[LabelOutcome]:
        raise AssertionError("the model was called")


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    absent = tmp_path / "model.onnx"

    expected = f"the model file {absent} is missing: run `make setup`"

    with pytest.raises(ModelMissing, match=re.escape(expected)):
        onnx_labeller(Settings(model_path=absent))
