"""An upload URL used more than once: a client retrying a PUT that timed out, at once or
later, with the same bytes or others. The first image is never lost or replaced."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.sqlite import SqliteDatabase, SqliteLabelTable
from chalicelib.domain.errors import (
    ImageLabellerError,
    ImageTooLarge,
    NotAnImage,
    StoredImageMissing,
)
from chalicelib.domain.models import Status
from chalicelib.submission import Submission
from chalicelib.uploads import UploadConflict
from chalicelib.use_cases import UseCases
from tests.support import TENANT, jpeg_variant, photo_jpeg
from tests.unit.test_service import make_service, stored_files


@pytest.fixture
def service(
    folder_store: FolderImageStore, sqlite_table: SqliteLabelTable, tiny_labeller: OnnxLabeller
) -> UseCases:
    return make_service(folder_store, sqlite_table, tiny_labeller, {})


def test_the_same_bytes_again_answer_the_first_record(service: UseCases) -> None:
    image_id = service.uploads.start_upload(TENANT, "image/jpeg").image_id
    first = service.uploads.receive_upload(TENANT, image_id, photo_jpeg("coffee"))
    again = service.uploads.receive_upload(TENANT, image_id, photo_jpeg("coffee"))
    assert first.created and not again.created
    assert again.record == first.record


def test_other_bytes_to_a_used_url_are_refused_and_the_first_image_kept(
    service: UseCases, folder_store: FolderImageStore
) -> None:
    image_id = service.uploads.start_upload(TENANT, "image/jpeg").image_id
    first = service.uploads.receive_upload(TENANT, image_id, photo_jpeg("coffee")).record
    with pytest.raises(UploadConflict) as refused:
        service.uploads.receive_upload(TENANT, image_id, photo_jpeg("chelsea"))
    assert refused.value.code == "conflict"
    assert service.records.get(TENANT, image_id) == first
    assert folder_store.get(image_id) == photo_jpeg("coffee")


def test_a_late_notification_of_other_bytes_leaves_the_record_and_image(
    service: UseCases, folder_store: FolderImageStore
) -> None:
    image_id = service.uploads.start_upload(TENANT, "image/jpeg").image_id
    first = service.uploads.receive_upload(TENANT, image_id, photo_jpeg("coffee")).record
    folder_store.put(f"uploads/{image_id}", photo_jpeg("chelsea"), "image/jpeg")
    assert service.uploads.register_upload(TENANT, image_id) == first
    assert folder_store.get(image_id) == photo_jpeg("coffee")
    assert service.uploads.register_upload(TENANT, image_id) == first  # nothing left to register


def race(service: UseCases, image_id: str, bodies: list[bytes]) -> list[object]:
    """PUT every body to the upload at the same moment; each answer or error, in order."""
    start = threading.Barrier(len(bodies))

    def put(data: bytes) -> object:
        start.wait()
        try:
            return service.uploads.receive_upload(TENANT, image_id, data)
        except ImageLabellerError as error:
            return error

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(put, bodies))


@pytest.mark.parametrize("round_number", range(5))
def test_twenty_puts_of_the_same_bytes_at_once_make_one_record_and_keep_its_image(
    service: UseCases,
    folder_store: FolderImageStore,
    database: SqliteDatabase,
    tmp_path: Path,
    round_number: int,
) -> None:
    data = jpeg_variant(photo_jpeg("chelsea"), round_number)
    image_id = service.uploads.start_upload(TENANT, "image/jpeg").image_id
    answers = race(service, image_id, [data] * 20)
    assert all(isinstance(answer, Submission) for answer in answers), answers
    submissions = [answer for answer in answers if isinstance(answer, Submission)]
    assert sum(submission.created for submission in submissions) == 1
    assert {submission.record.image_id for submission in submissions} == {image_id}
    assert folder_store.get(image_id) == data
    assert [path.name for path in stored_files(tmp_path / "images") if path.is_file()] == [image_id]
    report = service.labelling.label_images([image_id])
    assert report.classified == [image_id]
    assert service.records.get(TENANT, image_id).status is Status.CLASSIFIED


def test_twenty_puts_of_different_bytes_at_once_keep_exactly_one(
    service: UseCases, folder_store: FolderImageStore
) -> None:
    bodies = [jpeg_variant(photo_jpeg("coffee"), n) for n in range(20)]
    image_id = service.uploads.start_upload(TENANT, "image/jpeg").image_id
    answers = race(service, image_id, bodies)
    accepted = [n for n, answer in enumerate(answers) if isinstance(answer, Submission)]
    refused = [answer for answer in answers if isinstance(answer, UploadConflict)]
    assert len(accepted) == 1 and len(refused) == 19, answers
    winner = bodies[accepted[0]]
    assert folder_store.get(image_id) == winner
    assert service.labelling.label_images([image_id]).classified == [image_id]


@pytest.mark.parametrize(
    ("refused", "error"),
    [(b"just some text, not an image", NotAnImage), (b"\xff" * 20_001, ImageTooLarge)],
    ids=["not-an-image", "too-large"],
)
def test_bytes_refused_as_an_upload_are_judged_again_when_submitted(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    refused: bytes,
    error: type[Exception],
) -> None:
    service = make_service(folder_store, sqlite_table, tiny_labeller, {}, max_image_bytes=20_000)
    image_id = service.uploads.start_upload(TENANT, "image/png").image_id
    assert service.uploads.receive_upload(TENANT, image_id, refused).record.status is Status.FAILED
    with pytest.raises(error):
        service.submission.submit_upload(TENANT, refused)  # not the refused record, reopened
    with pytest.raises(StoredImageMissing):
        folder_store.get(image_id)  # and its bytes were never stored
