from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.errors import DuplicateImageId
from chalicelib.models import ImageInfo, ImageRecord, Label, Status
from chalicelib.ports import LabelTable

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LABELS = (Label("espresso", 0.95), Label("cup", 0.015))


def new_record(source_url: str | None = "https://example.com/a.jpg") -> ImageRecord:
    return ImageRecord(
        image_id=str(uuid.uuid4()),
        status=Status.NOT_CLASSIFIED,
        image=ImageInfo("JPEG", 640, 480, 12345, "ab" * 32),
        submitted_at=T0,
        source_url=source_url,
    )


def test_inserted_record_reads_back_equal(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    assert label_table.get(record.image_id) == record


def test_upload_record_without_source_url_reads_back_equal(label_table: LabelTable) -> None:
    record = new_record(source_url=None)
    label_table.insert(record)
    assert label_table.get(record.image_id) == record


def test_unknown_id_reads_as_none(label_table: LabelTable) -> None:
    assert label_table.get(str(uuid.uuid4())) is None


def test_second_insert_of_an_id_is_refused_and_keeps_the_first(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    with pytest.raises(DuplicateImageId):
        label_table.insert(new_record().__class__(**{**record.__dict__, "source_url": "x"}))
    assert label_table.get(record.image_id) == record


def test_complete_classifies_a_pending_record(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    assert label_table.complete(record.image_id, LABELS, "model-a", T0 + timedelta(seconds=1))
    stored = label_table.get(record.image_id)
    assert stored is not None
    assert stored.status is Status.CLASSIFIED
    assert stored.labels == LABELS
    assert stored.model == "model-a"
    assert stored.labelled_at == T0 + timedelta(seconds=1)
    assert stored.legacy_label == "espresso, cup"


def test_complete_never_overwrites_a_finished_record(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    label_table.complete(record.image_id, LABELS, "model-a", T0)
    assert not label_table.complete(record.image_id, (Label("pug", 0.5),), "model-b", T0)
    assert not label_table.fail(record.image_id, "late failure", "model-b", T0)
    stored = label_table.get(record.image_id)
    assert stored is not None and stored.labels == LABELS and stored.model == "model-a"


def test_fail_marks_a_pending_record_failed_with_its_reason(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    assert label_table.fail(record.image_id, "truncated", "model-a", T0)
    stored = label_table.get(record.image_id)
    assert stored is not None
    assert (stored.status, stored.error, stored.legacy_label) == (
        Status.FAILED,
        "truncated",
        "FAILED",
    )
    assert not label_table.complete(record.image_id, LABELS, "model-a", T0)


def test_finishing_an_unknown_id_changes_nothing(label_table: LabelTable) -> None:
    unknown = str(uuid.uuid4())
    assert not label_table.complete(unknown, LABELS, "m", T0)
    assert not label_table.fail(unknown, "x", "m", T0)
    assert label_table.get(unknown) is None


def test_attempts_count_up_and_keep_the_record_pending(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    assert [label_table.count_attempt(record.image_id) for _ in range(3)] == [1, 2, 3]
    stored = label_table.get(record.image_id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (Status.NOT_CLASSIFIED, 3)
