"""A direct upload over the size limit is judged by its size, never read: S3 reports the
size in its notification (or HeadObject tells it), and reading a multi-GB object would run
the upload function out of memory, five times, into the dead-letter queue. Run on both
backends: SQLite + a folder, and DynamoDB + S3 (moto)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.s3 import S3ImageStore
from chalicelib.config import Limits
from chalicelib.domain.errors import StoredImageMissing
from chalicelib.domain.models import Status
from chalicelib.domain.record_json import record_body
from chalicelib.events.callbacks import sqs_record
from chalicelib.events.uploads import UploadedObject, uploaded_objects
from chalicelib.http.page import OPENAPI_PATH
from chalicelib.ports import ImageStore, LabelTable
from chalicelib.uploads import upload_key
from chalicelib.use_cases import UseCases, wire
from tests.support import TENANT, NoNetwork, solid_image

LIMIT = 50_000


class ReadRecordingFolderStore(FolderImageStore):
    """The folder store, recording every key whose bytes were read."""

    reads: list[str]

    def get(self, image_id: str) -> bytes:
        self.reads.append(image_id)
        return super().get(image_id)


class ReadRecordingS3Store(S3ImageStore):
    """The S3 store, recording every key whose bytes were read."""

    reads: list[str]

    def get(self, image_id: str) -> bytes:
        self.reads.append(image_id)
        return super().get(image_id)


@pytest.fixture(params=["sqlite+folder", "dynamodb+s3"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Any, tiny_labeller: OnnxLabeller
) -> tuple[UseCases, ImageStore, list[str]]:
    """The use cases on one backend, with a store that records its reads."""
    store: ReadRecordingFolderStore | ReadRecordingS3Store
    if request.param == "sqlite+folder":
        table: LabelTable = request.getfixturevalue("sqlite_table")
        store = ReadRecordingFolderStore(tmp_path / "images")
    else:
        table = request.getfixturevalue("dynamodb_table")
        s3: S3ImageStore = request.getfixturevalue("s3_store")
        store = ReadRecordingS3Store(s3._client, s3._bucket)
    store.reads = []
    service = wire(store, table, tiny_labeller, NoNetwork(), Limits(max_image_bytes=LIMIT))
    return service, store, store.reads


def uploaded(store: ImageStore, size: int) -> tuple[str, bytes]:
    """An image id whose upload (`size` bytes) has landed under uploads/."""
    data = b"\xff\xd8\xff" + b"\0" * (size - 3)
    image_id = "8a6c2a4e-6a0f-4f0e-9a53-5d1f2c0b9e11"
    store.put(upload_key(TENANT, image_id), data, "image/jpeg")
    return image_id, data


@pytest.mark.parametrize("reported", [True, False], ids=["size-notified", "size-asked"])
def test_an_upload_over_the_limit_is_never_read_and_ends_failed_too_large(
    backend: tuple[UseCases, ImageStore, list[str]], reported: bool
) -> None:
    service, store, reads = backend
    image_id, data = uploaded(store, LIMIT + 1)
    record = service.uploads.register_upload(TENANT, image_id, len(data) if reported else None)
    assert reads == []
    assert record is not None and record.status is Status.FAILED
    assert record.error is not None and "image_too_large" in record.error
    assert str(LIMIT + 1) in record.error
    assert record.image.size_bytes == LIMIT + 1
    assert service.records.get(TENANT, image_id) == record
    with pytest.raises(StoredImageMissing):
        store.size(upload_key(TENANT, image_id))  # the oversized object is deleted
    with pytest.raises(StoredImageMissing):
        store.size(image_id)  # and nothing was stored as the image


def test_a_replayed_notification_of_an_oversized_upload_keeps_the_record(
    backend: tuple[UseCases, ImageStore, list[str]],
) -> None:
    service, store, reads = backend
    image_id, data = uploaded(store, LIMIT + 1)
    first = service.uploads.register_upload(TENANT, image_id, len(data))
    assert service.uploads.register_upload(TENANT, image_id, len(data)) == first
    uploaded(store, LIMIT + 1)  # the form used again, with another oversized file
    assert service.uploads.register_upload(TENANT, image_id, len(data)) == first
    assert reads == []


def test_an_oversized_upload_after_a_good_one_leaves_the_image(
    backend: tuple[UseCases, ImageStore, list[str]],
) -> None:
    service, store, reads = backend
    image_id = service.uploads.start_upload(TENANT, "image/jpeg").image_id
    photo = solid_image("JPEG", (64, 48))
    store.put(upload_key(TENANT, image_id), photo, "image/jpeg")
    good = service.uploads.register_upload(TENANT, image_id, len(photo))
    assert good is not None and good.status is Status.NOT_CLASSIFIED
    store.put(upload_key(TENANT, image_id), b"\0" * (LIMIT + 1), "image/jpeg")
    assert service.uploads.register_upload(TENANT, image_id, LIMIT + 1) == good
    assert reads == [upload_key(TENANT, image_id)]  # the good upload only
    assert store.get(image_id) == photo
    with pytest.raises(StoredImageMissing):
        store.size(upload_key(TENANT, image_id))


def test_an_upload_at_the_limit_is_read_and_judged_as_bytes(
    backend: tuple[UseCases, ImageStore, list[str]],
) -> None:
    service, store, reads = backend
    image_id, data = uploaded(store, LIMIT)
    record = service.uploads.register_upload(TENANT, image_id, len(data))
    assert reads == [upload_key(TENANT, image_id)]
    assert record is not None and record.status is Status.FAILED  # not an image it can decode
    assert record.error is not None and "image_too_large" not in record.error


def test_the_notification_gives_each_upload_its_size() -> None:
    def message(key: str, s3_object: dict[str, Any]) -> dict[str, Any]:
        notification = {
            "Records": [{"eventName": "ObjectCreated:Post", "s3": {"object": s3_object}}]
        }
        return sqs_record(key, json.dumps(notification), "arn:aws:sqs:local:0:q")

    records = [
        message("a", {"key": "uploads/a", "size": 5_000_000_000}),
        message("b", {"key": "uploads/b"}),
        message("c", {"key": "uploads/c", "size": "12"}),
    ]
    assert uploaded_objects(records) == [
        UploadedObject("a", 5_000_000_000),
        UploadedObject("b", None),
        UploadedObject("c", None),
    ]


def test_an_upload_refused_unread_answers_in_the_documented_record_shape(
    backend: tuple[UseCases, ImageStore, list[str]],
) -> None:
    service, store, _ = backend
    image_id, data = uploaded(store, LIMIT + 1)
    service.uploads.register_upload(TENANT, image_id, len(data))
    image = record_body(service.records.get(TENANT, image_id))["image"]
    schemas = json.loads(OPENAPI_PATH.read_text())["components"]["schemas"]
    image_schema = schemas["Record"]["properties"]["image"]
    if "$ref" in image_schema:
        image_schema = schemas[image_schema["$ref"].rsplit("/", 1)[1]]
    assert re.fullmatch(image_schema["properties"]["sha256"]["pattern"], image["sha256"])
    assert (image["format"], image["size_bytes"]) == ("unknown", LIMIT + 1)
