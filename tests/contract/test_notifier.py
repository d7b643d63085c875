"""The Notifier port on every backend: the local queue (SQLite) and SQS (moto)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chalicelib.adapters.sqlite import SqliteDatabase
from chalicelib.adapters.sqlite_queue import SqliteNotifier, SqliteQueue
from chalicelib.adapters.sqs import SqsNotifier
from chalicelib.events.callbacks import CALLBACK_QUEUE, callback_image_ids
from chalicelib.ports import Notifier
from tests.fixtures.aws import REGION

# A notifier, and what a consumer of its queue receives (image ids, in any order).
QueueUnderTest = tuple[Notifier, Callable[[], list[str]]]


@pytest.fixture
def sqlite_queue(database: SqliteDatabase) -> QueueUnderTest:
    queue = SqliteQueue(database, CALLBACK_QUEUE)

    def received() -> list[str]:
        messages = queue.receive(100, visibility_seconds=60)
        return callback_image_ids({"body": message.body} for message in messages)

    return SqliteNotifier(queue), received


@pytest.fixture
def sqs_queue(moto: None) -> QueueUnderTest:
    client = boto3.client("sqs", region_name=REGION)
    url = client.create_queue(QueueName=CALLBACK_QUEUE)["QueueUrl"]

    def received() -> list[str]:
        records: list[dict[str, Any]] = []
        while answer := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            records += [{"body": message["Body"]} for message in answer]
        return callback_image_ids(records)

    return SqsNotifier(client, url), received


@pytest.fixture(params=["sqlite_queue", "sqs_queue"])
def queue(request: pytest.FixtureRequest) -> QueueUnderTest:
    under_test: QueueUnderTest = request.getfixturevalue(request.param)
    return under_test


def test_every_notified_image_reaches_the_queue(queue: QueueUnderTest) -> None:
    notifier, received = queue
    ids = [str(uuid.uuid4()) for _ in range(25)]  # more than one SQS batch of ten
    notifier.notify(ids[:1])
    notifier.notify(ids[1:])
    assert sorted(received()) == sorted(ids)


def test_notifying_nothing_queues_nothing(queue: QueueUnderTest) -> None:
    notifier, received = queue
    notifier.notify([])
    assert received() == []
