"""The bench's new parts, tiny: the straightforward script, the labelling worker alone and
the stage profile run on a few real photos and answer in their shape (no timing asserted)."""

from __future__ import annotations

import pytest

from chalicelib.config import DEFAULT_MODEL
from chalicelib.domain.classes import imagenet_class_names
from tools.bench import script_baseline, stages
from tools.bench.labeller import labeller_for
from tools.bench.photos import mixed_photos, small_jpeg
from tools.bench.worker import worker_throughput

PHOTOS = [photo.data for photo in mixed_photos(10, first=7_000_000)]


def test_script_labels_each_photo_with_its_top_five_as_the_service_does() -> None:
    session = script_baseline.session_for(DEFAULT_MODEL)
    crop = script_baseline.input_size(DEFAULT_MODEL)
    answers = script_baseline.label_all(session, PHOTOS, crop)
    assert len(answers) == len(PHOTOS)
    for top in answers:
        assert len(top) == script_baseline.TOP
        scores = [score for _, score in top]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
    names = imagenet_class_names()
    service = labeller_for(DEFAULT_MODEL).label(PHOTOS, 1)
    agreeing = sum(
        outcome.labels[0].name == names[top[0][0]]
        for outcome, top in zip(service, answers, strict=True)
    )
    # The same model and crop; only the service's reduced-scale JPEG decoding differs.
    assert agreeing >= 0.7 * len(PHOTOS)


def test_script_throughput_counts_every_photo() -> None:
    figures = script_baseline.script_throughput(DEFAULT_MODEL, PHOTOS)
    assert figures["images"] == len(PHOTOS)
    assert figures["images_per_s"] > 0


def test_worker_alone_labels_every_photo_and_times_the_labeller_beside_it() -> None:
    figures = worker_throughput(DEFAULT_MODEL, PHOTOS, small_jpeg(-7_000_000))
    assert set(figures) == {"worker_images_per_s", "labeller_images_per_s", "batch_size"}
    assert figures["worker_images_per_s"] > 0 and figures["labeller_images_per_s"] > 0
    assert figures["batch_size"] == 16


def test_stage_profile_adds_up_to_each_steps_wall_time() -> None:
    profile = stages.profile(DEFAULT_MODEL, images=6, singles=2, threads=1, photo_set="web")
    for figures in (profile.submit, profile.worker):
        parts = sum(ms for stage, ms in figures.items() if stage != "total")
        assert parts == pytest.approx(figures["total"])
    for stage in ("decode", "inference", "record read", "image read"):
        assert profile.worker[stage] > 0, stage
    assert profile.submit["store the image file (fsync)"] > 0
    assert len(profile.stream_wait_ms) == 2
    text = profile.text()
    assert "record update + index writes" in text and "stream wait" in text
