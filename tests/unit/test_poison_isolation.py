"""A poison image among good ones (issue 14, stream failures): the batch is labelled again
one image at a time, the poison ends FAILED with the error that broke it, and the images
behind it are labelled; errors of the infrastructure still raise, for the stream to retry.

Each test runs on both backends (SQLite + folder, moto's DynamoDB + S3) with the tiny
stand-in graph. The poison is a realistic one: an ImageLabels item another tool wrote,
NOT_CLASSIFIED but missing the attributes a record has, so reading it raises.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.adapters import transient
from chalicelib.adapters.dynamodb import DynamoDBLabelTable
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.s3 import S3ImageStore
from chalicelib.adapters.sqlite import SqliteDatabase, SqliteLabelTable
from chalicelib.config import Limits
from chalicelib.domain.errors import StorageFull
from chalicelib.domain.models import ImageRecord, LabelOutcome, Status
from chalicelib.labelling import UnfinishedImages
from chalicelib.ports import ImageStore, Labeller, LabelTable
from chalicelib.use_cases import UseCases, wire
from tests.fixtures.aws import TABLE
from tests.support import TENANT, NoNetwork, solid_image

POISON = "poison-0000-written-by-another-tool"


@dataclass
class Backend:
    name: str
    store: ImageStore
    table: LabelTable
    put_poison: Callable[[str], None]  # write an unreadable NOT_CLASSIFIED item
    raw_item: Callable[[str], dict[str, Any]]  # the stored item, as stored
    is_transient: Callable[[BaseException], bool]
    transient_error: Callable[[], Exception]  # what this backend raises when busy


def sqlite_backend(database: SqliteDatabase, store: ImageStore) -> Backend:
    def put_poison(image_id: str) -> None:
        item = {"Id": image_id, "Status": "NOT_CLASSIFIED", "SubmittedAt": "last tuesday"}
        with database.transaction() as connection:
            connection.execute(
                "INSERT INTO images (id, status, item) VALUES (?, ?, ?)",
                (image_id, "NOT_CLASSIFIED", json.dumps(item)),
            )

    def raw_item(image_id: str) -> dict[str, Any]:
        [(item,)] = database.query("SELECT item FROM images WHERE id = ?", (image_id,))
        loaded: dict[str, Any] = json.loads(item)
        return loaded

    def busy() -> Exception:
        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = sqlite3.SQLITE_BUSY
        return error

    return Backend(
        "sqlite",
        store,
        SqliteLabelTable(database),
        put_poison,
        raw_item,
        transient.sqlite_transient,
        busy,
    )


def dynamodb_backend(client: Any, table: DynamoDBLabelTable, store: S3ImageStore) -> Backend:
    def put_poison(image_id: str) -> None:
        client.put_item(
            TableName=TABLE,
            Item={
                "Id": {"S": image_id},
                "Status": {"S": "NOT_CLASSIFIED"},
                "SubmittedAt": {"N": "1733130000"},  # a number where a record has a string
            },
        )

    def raw_item(image_id: str) -> dict[str, Any]:
        item = client.get_item(TableName=TABLE, Key={"Id": {"S": image_id}})["Item"]
        return {name: next(iter(value.values())) for name, value in item.items()}

    def throttled() -> Exception:
        error: Exception = ClientError(
            {
                "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "GetItem",
        )
        return error

    return Backend(
        "dynamodb", store, table, put_poison, raw_item, transient.aws_transient, throttled
    )


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return sqlite_backend(
            request.getfixturevalue("database"), request.getfixturevalue("folder_store")
        )
    return dynamodb_backend(
        request.getfixturevalue("dynamodb_client"),
        request.getfixturevalue("dynamodb_table"),
        request.getfixturevalue("s3_store"),
    )


def service_on(backend: Backend, labeller: Labeller, table: LabelTable | None = None) -> UseCases:
    return wire(
        store=backend.store,
        table=table or backend.table,
        labeller=labeller,
        fetcher=NoNetwork(),
        limits=Limits(),
        is_transient=backend.is_transient,
    )


def good_images(service: UseCases, count: int) -> list[str]:
    """Images submitted the usual way (distinct bytes), still NOT_CLASSIFIED."""
    return [
        service.submission.submit_upload(TENANT, solid_image(size=(40 + index, 30))).record.image_id
        for index in range(count)
    ]


class RaisingTable:
    """The backend's table, whose `get` of one image raises `error` (and `fail` of it
    raises `fail_error`, if given); everything else is the real table."""

    def __init__(
        self,
        inner: LabelTable,
        image_id: str,
        error: Exception,
        fail_error: Exception | None = None,
    ) -> None:
        self._inner = inner
        self._image_id = image_id
        self._error = error
        self._fail_error = fail_error

    def get(self, image_id: str) -> ImageRecord | None:
        if image_id == self._image_id:
            raise self._error
        return self._inner.get(image_id)

    def fail(self, image_id: str, error: str, model: str | None, at: Any) -> bool:
        if image_id == self._image_id and self._fail_error is not None:
            raise self._fail_error
        return self._inner.fail(image_id, error, model, at)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CrashingLabeller:
    """The tiny graph, except that any batch holding `poison` bytes raises, as a model
    runtime that crashes on one input would."""

    def __init__(self, inner: Labeller, poison: bytes) -> None:
        self._inner = inner
        self._poison = poison
        self.calls: list[int] = []

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    def label(self, images: Iterable[bytes], top_k: int) -> Iterable[LabelOutcome]:
        images = list(images)
        self.calls.append(len(images))
        if self._poison in images:
            raise RuntimeError("the runtime crashed\non this input")
        return self._inner.label(images, top_k)


def statuses(service: UseCases, image_ids: list[str]) -> list[Status]:
    return [service.records.get(TENANT, image_id).status for image_id in image_ids]


def test_a_poison_record_ends_failed_with_its_error_and_the_images_behind_it_are_labelled(
    backend: Backend, tiny_labeller: OnnxLabeller, caplog: pytest.LogCaptureFixture
) -> None:
    service = service_on(backend, tiny_labeller)
    first, *behind = good_images(service, 3)
    backend.put_poison(POISON)
    report = service.labelling.label_images([first, POISON, *behind])
    assert sorted(report.classified) == sorted([first, *behind])
    assert report.failed == [POISON]
    assert statuses(service, [first, *behind]) == [Status.CLASSIFIED] * 3
    poison = backend.raw_item(POISON)
    assert poison["Status"] == "FAILED"
    # The reason names the error: its type and its message.
    assert poison["Error"].startswith("labelling this image raised ")
    assert any(name in poison["Error"] for name in ("KeyError", "ValueError", "TypeError"))
    assert poison["Label"] == "FAILED"  # what the legacy GetImageLabel route answers
    set_aside = [r for r in caplog.records if getattr(r, "image_id", None) == POISON]
    assert set_aside and set_aside[-1].getMessage().startswith("image set aside")


def test_a_replayed_batch_with_its_poison_already_failed_changes_nothing(
    backend: Backend, tiny_labeller: OnnxLabeller
) -> None:
    service = service_on(backend, tiny_labeller)
    images = good_images(service, 2)
    backend.put_poison(POISON)
    service.labelling.label_images([POISON, *images])
    failed = backend.raw_item(POISON)
    report = service.labelling.label_images([POISON, *images])
    assert (report.classified, report.failed) == ([], [])
    assert sorted(report.skipped) == sorted([POISON, *images])
    assert backend.raw_item(POISON) == failed


def test_an_image_the_model_crashes_on_fails_alone_with_the_crash_in_its_error(
    backend: Backend, tiny_labeller: OnnxLabeller
) -> None:
    poison_bytes = solid_image(size=(99, 77))
    labeller = CrashingLabeller(tiny_labeller, poison_bytes)
    service = service_on(backend, labeller)
    good = good_images(service, 2)
    poison = service.submission.submit_upload(TENANT, poison_bytes).record.image_id
    report = service.labelling.label_images([good[0], poison, good[1]])
    assert (sorted(report.classified), report.failed) == (sorted(good), [poison])
    record = service.records.get(TENANT, poison)
    assert record.status is Status.FAILED
    # Type and message, on one line.
    assert record.error == (
        "labelling this image raised RuntimeError: the runtime crashed on this input"
    )
    # The batch of three, then each image alone.
    assert labeller.calls == [3, 1, 1, 1]


def test_a_transient_error_is_raised_for_the_stream_to_retry_and_fails_nothing(
    backend: Backend, tiny_labeller: OnnxLabeller
) -> None:
    plain = service_on(backend, tiny_labeller)
    images = good_images(plain, 3)
    busy = backend.transient_error()
    table = RaisingTable(backend.table, images[1], busy)
    service = service_on(backend, tiny_labeller, table)
    with pytest.raises(type(busy)):
        service.labelling.label_images(images)
    assert statuses(plain, images[1:]) == [Status.NOT_CLASSIFIED] * 2
    # Once the table answers again, the retried batch labels them all.
    plain.labelling.label_images(images)
    assert statuses(plain, images) == [Status.CLASSIFIED] * 3


def test_a_transient_error_while_labelling_one_at_a_time_is_raised_too(
    backend: Backend, tiny_labeller: OnnxLabeller
) -> None:
    plain = service_on(backend, tiny_labeller)
    images = good_images(plain, 2)
    backend.put_poison(POISON)
    # The poison raises its own error, then failing it meets a busy table.
    table = RaisingTable(
        backend.table, POISON, KeyError("Image"), fail_error=backend.transient_error()
    )
    service = service_on(backend, tiny_labeller, table)
    with pytest.raises(type(backend.transient_error())):
        service.labelling.label_images([*images, POISON])
    assert backend.raw_item(POISON)["Status"] == "NOT_CLASSIFIED"


def test_a_poison_that_cannot_even_be_failed_raises_after_the_rest_are_labelled(
    backend: Backend, tiny_labeller: OnnxLabeller
) -> None:
    plain = service_on(backend, tiny_labeller)
    images = good_images(plain, 2)
    backend.put_poison(POISON)
    table = RaisingTable(
        backend.table, POISON, KeyError("Image"), fail_error=ValueError("no such attribute")
    )
    service = service_on(backend, tiny_labeller, table)
    with pytest.raises(UnfinishedImages) as raised:
        service.labelling.label_images([POISON, *images])
    assert raised.value.image_ids == [POISON]
    assert statuses(plain, images) == [Status.CLASSIFIED] * 2


def test_failing_an_unreadable_record_works_on_the_table_itself(backend: Backend) -> None:
    backend.put_poison(POISON)
    with pytest.raises((KeyError, ValueError, TypeError)):
        backend.table.get(POISON)
    from datetime import UTC, datetime

    assert backend.table.fail(POISON, "unreadable", None, datetime.now(UTC)) is True
    assert (backend.raw_item(POISON)["Status"], backend.raw_item(POISON)["Error"]) == (
        "FAILED",
        "unreadable",
    )


# --- which errors are the infrastructure's (adapters/transient.py) ----------------------


def client_error(code: str, status: int = 400, **extra: Any) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {}}
    response["ResponseMetadata"]["HTTPStatusCode"] = status
    response.update(extra)
    return ClientError(response, "AnyOperation")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("ThrottlingException"), True),
        (client_error("ProvisionedThroughputExceededException"), True),
        (client_error("SlowDown", 503), True),
        (client_error("SomethingNew", 500), True),
        (EndpointConnectionError(endpoint_url="https://dynamodb.us-west-2.amazonaws.com"), True),
        (
            client_error(
                "TransactionCanceledException",
                CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict"}],
            ),
            True,
        ),
        (
            client_error(
                "TransactionCanceledException",
                CancellationReasons=[{"Code": "ValidationError"}],
            ),
            False,
        ),
        (client_error("ValidationException"), False),
        (client_error("AccessDeniedException", 403), False),
        (KeyError("Image"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_aws_errors_that_are_worth_retrying(error: Exception, expected: bool) -> None:
    assert transient.aws_transient(error) is expected


def test_an_error_raised_from_a_throttle_is_transient_one_raised_while_handling_it_is_not() -> None:
    throttle = client_error("ThrottlingException")
    try:
        raise RuntimeError("wrapped") from throttle
    except RuntimeError as wrapped:
        assert transient.aws_transient(wrapped)
    try:
        try:
            raise throttle
        except ClientError:
            raise KeyError("Image") from None
    except KeyError as unrelated:
        assert not transient.aws_transient(unrelated)


def test_a_busy_database_and_a_full_disk_are_transient_other_sqlite_errors_are_not() -> None:
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
    no_table = sqlite3.OperationalError("no such table: images")
    no_table.sqlite_errorcode = sqlite3.SQLITE_ERROR
    assert transient.sqlite_transient(locked)
    assert transient.sqlite_transient(StorageFull("the record store is full"))
    assert not transient.sqlite_transient(no_table)
    assert not transient.sqlite_transient(KeyError("Image"))


def test_the_composition_root_hands_each_backend_its_own_classifier() -> None:
    from chalicelib.bootstrap import _transient_check
    from chalicelib.config import Settings

    aws = Settings.from_environ({"IMAGELABELLER_BACKEND": "aws"})
    local = Settings.from_environ({"IMAGELABELLER_BACKEND": "local"})
    assert _transient_check(aws) is transient.aws_transient
    assert _transient_check(local) is transient.sqlite_transient
