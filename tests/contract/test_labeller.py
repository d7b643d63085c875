"""The Labeller contract, run against every labeller (ONNX in process with each model,
SageMaker endpoint). What holds whatever the labels are called runs on the tiny stand-in
graph too, and so in `make check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.adapters.onnx import OnnxLabeller, model_spec
from chalicelib.config import DEFAULT_MODEL
from chalicelib.domain.errors import LabellerUnavailable
from chalicelib.ports import Labeller
from tests.support import EXPECTED_TOP_LABELS, photo_jpeg, photo_png

# Each runs an exported model (the SageMaker stand-in runs Lite0). The SageMaker adapter
# runs against each answer shape an endpoint may give (tools/localaws/sagemaker_runtime.py):
# TensorFlow Serving's `predictions`, and JumpStart's verbose `probabilities` + `labels`.
LABELLERS = {
    "onnx": "onnx_labeller",
    "onnx_lite2": "onnx_lite2_labeller",
    "sagemaker": "labelling_sagemaker_labeller",
    "sagemaker_jumpstart_verbose": "labelling_sagemaker_verbose_labeller",
}
# The same adapters on the tiny stand-in graph (tests/fixtures/tiny_model.py), the SageMaker
# one with every answer shape.
TINY_LABELLERS = {
    "tiny_onnx": "tiny_labeller",
    "tiny_sagemaker": "sagemaker_labeller",
    "tiny_sagemaker_jumpstart": "sagemaker_jumpstart_labeller",
    "tiny_sagemaker_jumpstart_verbose": "sagemaker_verbose_labeller",
}


@pytest.fixture(params=list(LABELLERS))
def labeller(request: pytest.FixtureRequest, exported_models: dict[str, Path]) -> Labeller:
    """Each labeller on an exported model, so each test that takes this fixture is marked
    `model`: for what the labels must say."""
    chosen: Labeller = request.getfixturevalue(LABELLERS[request.param])
    return chosen


@pytest.fixture(
    params=[
        *TINY_LABELLERS,
        # Chosen by name, these need the mark by hand: the fixtures do not show it.
        *(pytest.param(name, marks=pytest.mark.model) for name in LABELLERS),
    ]
)
def any_labeller(request: pytest.FixtureRequest) -> Labeller:
    """Each labeller on the tiny graph (fast) and on an exported model (`model`): for what
    holds whatever the labels are called."""
    chosen: Labeller = request.getfixturevalue({**TINY_LABELLERS, **LABELLERS}[request.param])
    return chosen


@pytest.mark.parametrize("photo", sorted(EXPECTED_TOP_LABELS))
def test_real_photo_gets_its_correct_top_label(labeller: Labeller, photo: str) -> None:
    [outcome] = list(labeller.label([photo_png(photo)], top_k=5))
    assert outcome.ok
    assert outcome.labels[0].name in EXPECTED_TOP_LABELS[photo]


def test_labels_are_top_k_best_first_with_scores_in_unit_range(labeller: Labeller) -> None:
    [outcome] = list(labeller.label([photo_jpeg("coffee")], top_k=5))
    scores = [label.score for label in outcome.labels]
    assert len(scores) == 5
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert outcome.labels[0].name == "espresso" and scores[0] > 0.8


def test_batch_answers_in_order_and_one_bad_image_spoils_nothing(labeller: Labeller) -> None:
    truncated = photo_jpeg("chelsea")[:5000]
    outcomes = list(
        labeller.label([photo_png("coffee"), truncated, photo_png("motorcycle")], top_k=3)
    )
    assert len(outcomes) == 3
    assert outcomes[0].labels[0].name == "espresso"
    assert not outcomes[1].ok and outcomes[1].error and "truncated" in outcomes[1].error
    assert outcomes[2].labels[0].name in EXPECTED_TOP_LABELS["motorcycle"]


def test_batch_gives_the_same_labels_as_one_by_one(any_labeller: Labeller) -> None:
    photos = [photo_png(name) for name in sorted(EXPECTED_TOP_LABELS)]
    together = list(any_labeller.label(photos, top_k=3))
    alone = [next(iter(any_labeller.label([photo], top_k=3))) for photo in photos]
    for batch_outcome, single_outcome in zip(together, alone, strict=True):
        assert [label.name for label in batch_outcome.labels] == [
            label.name for label in single_outcome.labels
        ]
        assert batch_outcome.labels[0].score == pytest.approx(
            single_outcome.labels[0].score, abs=1e-4
        )


def test_every_image_gets_top_k_labels_best_first_in_the_unit_range(
    any_labeller: Labeller,
) -> None:
    outcomes = list(any_labeller.label([photo_png("coffee"), photo_jpeg("motorcycle")], top_k=4))
    for outcome in outcomes:
        assert outcome.ok, outcome.error
        scores = [label.score for label in outcome.labels]
        assert len(scores) == 4 and scores == sorted(scores, reverse=True)
        assert all(0.0 <= score <= 1.0 for score in scores)
        assert "background" not in {label.name for label in outcome.labels}


def test_model_id_names_the_model(any_labeller: Labeller) -> None:
    assert any_labeller.model_id


def test_damaged_model_file_makes_the_labeller_unavailable(tmp_path: Path) -> None:
    damaged = tmp_path / "model.onnx"
    damaged.write_bytes(b"not a model")
    with pytest.raises(LabellerUnavailable, match="cannot be loaded"):
        list(
            OnnxLabeller(model_spec(DEFAULT_MODEL), damaged, 10**8).label([photo_png("coffee")], 5)
        )
