"""The use cases on the embedded adapters (SQLite table, folder store, ONNX model).

The model is the tiny stand-in graph (tests/fixtures/tiny_model.py), but in the tests that
check what the labels say: they take `labelling_service`, on the real Lite0 (`model`)."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chalicelib.adapters.emf import EmfMetrics
from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.sqlite import SqliteDatabase, SqliteLabelTable
from chalicelib.config import Limits
from chalicelib.domain.errors import (
    FetchFailed,
    ImageNotFound,
    ImageTooLarge,
    InvalidRequest,
    LabellerUnavailable,
    NotAnImage,
    StoredImageMissing,
)
from chalicelib.domain.models import ImageInfo, ImageRecord, LabelOutcome, Status, utc_now
from chalicelib.labelling import LabellingRetryNeeded
from chalicelib.ports import Labeller
from chalicelib.uploads import upload_key
from chalicelib.use_cases import UseCases, wire
from tests.support import TENANT, photo_jpeg, photo_png, solid_image


class UrlTable:
    """Fetcher port answering from a dict: the network is not what these tests are about."""

    def __init__(self, pages: dict[str, bytes]) -> None:
        self.pages = pages

    def check_url(self, url: str) -> None:
        pass

    def fetch(self, url: str) -> bytes:
        if url not in self.pages:
            raise FetchFailed("the server answered HTTP 404")
        return self.pages[url]


class OutageLabeller:
    """Wraps a real labeller; the first `outages` calls fail as a model endpoint down would."""

    def __init__(self, inner: Labeller, outages: int) -> None:
        self.inner = inner
        self.outages = outages
        self.calls: list[int] = []

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def label(self, images: Iterable[bytes], top_k: int) -> Iterable[LabelOutcome]:
        images = list(images)
        self.calls.append(len(images))
        if len(self.calls) <= self.outages:
            raise LabellerUnavailable("endpoint unreachable")
        return self.inner.label(images, top_k)


class BrokenStore(FolderImageStore):
    def put(self, image_id: str, data: bytes, content_type: str) -> None:
        raise OSError("disk full")

    def put_new(self, image_id: str, data: bytes, content_type: str) -> bool:
        raise OSError("disk full")


class BrokenInsertTable(SqliteLabelTable):
    def insert(self, record: ImageRecord, *, unique_bytes: bool = True) -> None:
        raise OSError("database is locked")


class LateLookupTable(SqliteLabelTable):
    """The real SQLite table whose first `misses` lookups by bytes find nothing, as a
    submit that raced another one of the same bytes would see."""

    def __init__(self, database: SqliteDatabase, misses: int) -> None:
        super().__init__(database)
        self.misses = misses

    def find_by_sha256(self, tenant: str, sha256: str) -> ImageRecord | None:
        if self.misses > 0:
            self.misses -= 1
            return None
        return super().find_by_sha256(tenant, sha256)


@pytest.fixture
def pages() -> dict[str, bytes]:
    return {
        "https://photos.example/coffee.png": photo_png("coffee"),
        "https://photos.example/cat.jpg": photo_jpeg("chelsea"),
        "https://photos.example/notes.txt": b"just some text",
    }


def make_service(
    store: FolderImageStore,
    table: SqliteLabelTable,
    labeller: Labeller,
    pages: dict[str, bytes],
    **limits: int,
) -> UseCases:
    return wire(
        store=store,
        table=table,
        labeller=labeller,
        fetcher=UrlTable(pages),
        limits=Limits(**limits),
        max_attempts=3,
    )


@pytest.fixture
def service(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> UseCases:
    """On the tiny stand-in graph: for every test that holds whatever the labels are called."""
    return make_service(folder_store, sqlite_table, tiny_labeller, pages)


@pytest.fixture
def labelling_service(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    onnx_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> UseCases:
    """On the real Lite0, for the tests that check what the labels say."""
    return make_service(folder_store, sqlite_table, onnx_labeller, pages)


def test_submit_by_url_stores_the_image_and_a_pending_record(
    service: UseCases, folder_store: FolderImageStore, pages: dict[str, bytes]
) -> None:
    record = service.submission.submit_url(TENANT, "https://photos.example/coffee.png").record
    assert record.status is Status.NOT_CLASSIFIED
    assert record.source_url == "https://photos.example/coffee.png"
    assert (record.image.format, record.image.width, record.image.height) == ("PNG", 600, 400)
    assert folder_store.get(record.image_id) == pages["https://photos.example/coffee.png"]
    assert service.records.get(TENANT, record.image_id) == record


def test_submitted_images_are_labelled_by_one_batch(labelling_service: UseCases) -> None:
    coffee = labelling_service.submission.submit_url(
        TENANT, "https://photos.example/coffee.png"
    ).record
    cat = labelling_service.submission.submit_upload(TENANT, photo_jpeg("chelsea")).record
    report = labelling_service.labelling.label_images([coffee.image_id, cat.image_id])
    assert sorted(report.classified) == sorted([coffee.image_id, cat.image_id])
    labelled = labelling_service.records.get(TENANT, coffee.image_id)
    assert labelled.status is Status.CLASSIFIED
    assert labelled.labels[0].name == "espresso"
    assert labelled.model == "efficientnet-lite0/onnx"
    assert labelled.legacy_label.startswith("espresso, ")
    assert len(labelled.legacy_label.split(", ")) == 5


def test_replayed_batch_changes_nothing(service: UseCases) -> None:
    record = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    service.labelling.label_images([record.image_id])
    first = service.records.get(TENANT, record.image_id)
    report = service.labelling.label_images([record.image_id, record.image_id])
    assert report.skipped == [record.image_id]
    assert service.records.get(TENANT, record.image_id) == first


def test_undecodable_image_fails_alone_and_the_rest_of_its_batch_is_labelled(
    service: UseCases, folder_store: FolderImageStore, sqlite_table: SqliteLabelTable
) -> None:
    good = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    truncated = photo_jpeg("chelsea")[:4000]
    # A record of bytes that never decode (as one accepted before a stricter check was).
    info = ImageInfo("JPEG", 451, 300, len(truncated), hashlib.sha256(truncated).hexdigest())
    bad = ImageRecord(str(uuid.uuid4()), Status.NOT_CLASSIFIED, info, utc_now())
    folder_store.put(bad.image_id, truncated, "image/jpeg")
    sqlite_table.insert(bad)
    report = service.labelling.label_images([bad.image_id, good.image_id])
    assert (report.failed, report.classified) == ([bad.image_id], [good.image_id])
    failed = service.records.get(TENANT, bad.image_id)
    assert failed.status is Status.FAILED
    assert failed.error is not None and "decoded" in failed.error


def test_missing_stored_image_ends_failed_not_stuck(
    service: UseCases, folder_store: FolderImageStore
) -> None:
    record = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    folder_store.delete(record.image_id)
    service.labelling.label_images([record.image_id])
    failed = service.records.get(TENANT, record.image_id)
    assert (failed.status, failed.error) == (Status.FAILED, "the stored image is missing")


def test_model_outage_asks_for_a_retry_then_labels(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    labeller = OutageLabeller(tiny_labeller, outages=1)
    service = make_service(folder_store, sqlite_table, labeller, pages)
    record = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    with pytest.raises(LabellingRetryNeeded):
        service.labelling.label_images([record.image_id])
    assert service.records.get(TENANT, record.image_id).status is Status.NOT_CLASSIFIED
    service.labelling.label_images([record.image_id])
    labelled = service.records.get(TENANT, record.image_id)
    assert (labelled.status, labelled.attempts) == (Status.CLASSIFIED, 1)


def test_lasting_model_outage_ends_failed_after_the_attempt_limit(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    labeller = OutageLabeller(tiny_labeller, outages=100)
    service = make_service(folder_store, sqlite_table, labeller, pages)
    record = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    for _ in range(2):
        with pytest.raises(LabellingRetryNeeded):
            service.labelling.label_images([record.image_id])
    report = service.labelling.label_images([record.image_id])
    assert report.failed == [record.image_id]
    failed = service.records.get(TENANT, record.image_id)
    assert failed.status is Status.FAILED
    assert failed.error is not None and "failed 3 times" in failed.error
    assert len(labeller.calls) == 3


@pytest.mark.parametrize("url", ["", "   ", "https://" + "a" * 3000])
def test_submit_refuses_an_empty_or_overlong_url(service: UseCases, url: str) -> None:
    with pytest.raises(InvalidRequest):
        service.submission.submit_url(TENANT, url)


def test_submit_of_a_page_that_is_not_an_image_stores_nothing(
    service: UseCases, tmp_path: Path
) -> None:
    with pytest.raises(NotAnImage):
        service.submission.submit_url(TENANT, "https://photos.example/notes.txt")
    assert list((tmp_path / "images").iterdir()) == []


def test_truncated_upload_is_refused_at_submit(service: UseCases) -> None:
    with pytest.raises(NotAnImage, match="truncated"):
        service.submission.submit_upload(TENANT, photo_jpeg("coffee")[:20000])


def test_upload_over_the_byte_limit_is_refused(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    service = make_service(folder_store, sqlite_table, tiny_labeller, pages, max_image_bytes=1000)
    with pytest.raises(ImageTooLarge):
        service.submission.submit_upload(TENANT, photo_png("coffee"))


def test_image_over_the_pixel_limit_is_refused(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    service = make_service(
        folder_store, sqlite_table, tiny_labeller, pages, max_image_pixels=64 * 48 - 1
    )
    with pytest.raises(ImageTooLarge, match="pixels"):
        service.submission.submit_upload(TENANT, solid_image("PNG", (64, 48)))


def test_store_failure_leaves_no_record(
    tmp_path: Path,
    database: SqliteDatabase,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    broken = BrokenStore(tmp_path / "images")
    service = make_service(broken, sqlite_table, tiny_labeller, pages)
    with pytest.raises(OSError, match="disk full"):
        service.submission.submit_upload(TENANT, photo_png("coffee"))
    assert database.query("SELECT COUNT(*) FROM images") == [(0,)]


def test_record_failure_removes_the_stored_image(
    tmp_path: Path,
    folder_store: FolderImageStore,
    database: SqliteDatabase,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    service = make_service(folder_store, BrokenInsertTable(database), tiny_labeller, pages)
    with pytest.raises(OSError, match="locked"):
        service.submission.submit_upload(TENANT, photo_png("coffee"))
    assert list((tmp_path / "images").iterdir()) == []


def stored_files(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if not path.name.startswith(".")]


def test_the_loser_of_a_race_of_the_same_bytes_answers_as_a_resubmit(
    tmp_path: Path,
    folder_store: FolderImageStore,
    database: SqliteDatabase,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    table = LateLookupTable(database, misses=2)
    service = make_service(folder_store, table, tiny_labeller, pages)
    first = service.submission.submit_upload(TENANT, photo_png("coffee"))
    second = service.submission.submit_url(
        TENANT, "https://photos.example/coffee.png"
    )  # missed the first
    assert first.created and not second.created
    assert second.record == first.record
    assert database.query("SELECT id FROM images") == [(first.record.image_id,)]
    assert [path.name for path in stored_files(tmp_path / "images")] == [first.record.image_id]


def test_the_loser_of_a_race_with_a_failed_image_sends_it_to_be_labelled_again(
    database: SqliteDatabase,
    folder_store: FolderImageStore,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    table = LateLookupTable(database, misses=0)
    service = make_service(folder_store, table, tiny_labeller, pages)
    first = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    table.fail(first.image_id, "the model endpoint kept failing", "m", first.submitted_at)
    table.misses = 1
    again = service.submission.submit_upload(TENANT, photo_png("coffee"))
    assert again.created and again.record.image_id == first.image_id
    assert again.record.status is Status.NOT_CLASSIFIED
    assert again.record.previous is not None
    assert again.record.previous.status is Status.FAILED


def test_identical_submits_at_once_make_one_record_and_one_stored_image(
    tmp_path: Path,
    folder_store: FolderImageStore,
    database: SqliteDatabase,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    service = make_service(folder_store, sqlite_table, tiny_labeller, pages)
    data = photo_png("coffee")
    submitters = 16
    start = threading.Barrier(submitters)

    def submit(_: int) -> tuple[str, bool]:
        start.wait()
        submission = service.submission.submit_upload(TENANT, data)
        return submission.record.image_id, submission.created

    with ThreadPoolExecutor(max_workers=submitters) as pool:
        answers = list(pool.map(submit, range(submitters)))
    assert len({image_id for image_id, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert database.query("SELECT COUNT(*) FROM images") == [(1,)]
    assert [path.name for path in stored_files(tmp_path / "images")] == [answers[0][0]]


def test_a_batch_with_one_url_twice_gives_both_the_same_image(
    tmp_path: Path, service: UseCases, database: SqliteDatabase
) -> None:
    url = "https://photos.example/coffee.png"
    items = service.submission.submit_batch(TENANT, [url, url, "https://photos.example/cat.jpg"])
    coffee = [item.submission for item in items[:2]]
    assert coffee[0] is not None and coffee[1] is not None
    assert coffee[0].record.image_id == coffee[1].record.image_id
    assert sorted([coffee[0].created, coffee[1].created]) == [False, True]
    assert database.query("SELECT COUNT(*) FROM images") == [(2,)]
    assert len(stored_files(tmp_path / "images")) == 2


def test_direct_uploads_of_known_bytes_still_get_their_own_record(
    service: UseCases, folder_store: FolderImageStore
) -> None:
    submitted = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    ticket = service.uploads.start_upload(TENANT, "image/png")
    folder_store.put(upload_key(TENANT, ticket.image_id), photo_png("coffee"), "image/png")
    uploaded = service.uploads.register_upload(TENANT, ticket.image_id)
    assert uploaded is not None and uploaded.image_id == ticket.image_id
    assert uploaded.status is Status.NOT_CLASSIFIED
    assert (
        service.submission.submit_upload(TENANT, photo_png("coffee")).record.image_id
        == submitted.image_id
    )


# A fixed id that no record has: a fresh uuid4 would name the test differently in each
# of `make check`'s two processes, and pytest-xdist refuses collections that differ.
UNKNOWN_ID = "7d0c9b4e-3a1f-4c2e-9b8d-5f6a7e8c9d01"


@pytest.mark.parametrize("image_id", ["nope", UNKNOWN_ID, "../etc/passwd", ""])
def test_unknown_image_id_is_not_found(service: UseCases, image_id: str) -> None:
    with pytest.raises(ImageNotFound):
        service.records.get(TENANT, image_id)


def test_missing_stored_image_is_reported_by_the_store(folder_store: FolderImageStore) -> None:
    with pytest.raises(StoredImageMissing):
        folder_store.get("../../etc/passwd")


def test_submits_and_batches_are_published_as_embedded_metrics(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = wire(
        store=folder_store,
        table=sqlite_table,
        labeller=tiny_labeller,
        fetcher=UrlTable(pages),
        limits=Limits(),
        metrics=EmfMetrics(),
    )
    good = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    bad = service.submission.submit_upload(TENANT, photo_png("chelsea")).record
    folder_store.delete(bad.image_id)
    service.labelling.label_images([good.image_id, bad.image_id])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    submitted, batch = lines[0], lines[-1]
    directive = batch["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ImageLabeller"
    assert directive["Dimensions"] == [["service"]]
    assert batch["service"] == "imagelabeller"
    assert submitted["ImagesSubmitted"] == [1.0]
    assert batch["BatchSize"] == [2.0]
    assert (batch["ImagesClassified"], batch["ImagesFailed"]) == ([1.0], [1.0])
    assert len(batch["LabelLatency"]) == 1 and batch["LabelLatency"][0] > 0


class CountingReadsTable(SqliteLabelTable):
    """The real SQLite table, counting the records it is asked for."""

    reads = 0

    def get(self, image_id: str) -> ImageRecord | None:
        self.reads += 1
        return super().get(image_id)


def test_labelling_reads_a_record_once_when_it_has_no_callback(
    folder_store: FolderImageStore,
    database: SqliteDatabase,
    tiny_labeller: OnnxLabeller,
    pages: dict[str, bytes],
) -> None:
    table = CountingReadsTable(database)
    service = make_service(folder_store, table, tiny_labeller, pages)
    ids = [
        service.submission.submit_upload(TENANT, photo_jpeg(name)).record.image_id
        for name in ("coffee", "chelsea")
    ]
    table.reads = 0
    assert sorted(service.labelling.label_images(ids).classified) == sorted(ids)
    assert table.reads == len(ids)


def test_a_damaged_stored_image_fails_and_resubmitting_its_bytes_repairs_it(
    service: UseCases, folder_store: FolderImageStore
) -> None:
    data = photo_png("coffee")
    record = service.submission.submit_upload(TENANT, data).record
    folder_store.put(record.image_id, data[: len(data) // 2], "image/png")  # damaged on disk
    service.labelling.label_images([record.image_id])
    failed = service.records.get(TENANT, record.image_id)
    assert failed.status is Status.FAILED
    assert failed.error is not None and "damaged" in failed.error

    again = service.submission.submit_upload(TENANT, data)
    assert again.created and again.record.image_id == record.image_id
    assert folder_store.get(record.image_id) == data  # the good bytes are back
    service.labelling.label_images([record.image_id])
    assert service.records.get(TENANT, record.image_id).status is Status.CLASSIFIED


def test_resubmitting_classified_bytes_replaces_a_missing_stored_image(
    service: UseCases, folder_store: FolderImageStore
) -> None:
    data = photo_png("coffee")
    record = service.submission.submit_upload(TENANT, data).record
    service.labelling.label_images([record.image_id])
    folder_store.delete(record.image_id)
    again = service.submission.submit_upload(TENANT, data)
    assert not again.created and again.record.status is Status.CLASSIFIED
    assert folder_store.get(record.image_id) == data


@pytest.mark.parametrize(
    ("submitted", "kept"),
    [
        (
            "https://user:secret@photos.example/coffee.png?X-Amz-Signature=abc&key=k#top",
            "https://photos.example/coffee.png",
        ),
        ("https://photos.example:8443/coffee.png?", "https://photos.example:8443/coffee.png"),
    ],
)
def test_the_record_keeps_the_source_url_without_its_credentials(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    submitted: str,
    kept: str,
) -> None:
    service = make_service(
        folder_store, sqlite_table, tiny_labeller, {submitted: photo_png("coffee")}
    )
    record = service.submission.submit_url(TENANT, submitted).record
    assert record.source_url == kept
    assert service.records.get(TENANT, record.image_id).source_url == kept
