"""Callbacks leave the labelling path: labelling queues them, a delivery worker sends them.

The local queue (SQLite) keeps SQS's rules: a received message is hidden, comes back if
its handler fails, and goes to the dead letters after too many receives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.sqlite import SqliteDatabase, SqliteLabelTable
from chalicelib.adapters.sqlite_queue import SqliteNotifier, SqliteQueue
from chalicelib.config import Limits
from chalicelib.domain.models import Delivery, Status, WebhookStatus, utc_now
from chalicelib.events.callbacks import callback_image_ids
from chalicelib.local.queue import LocalQueuePoller
from chalicelib.use_cases import UseCases, wire
from tests.support import TENANT, photo_png
from tests.unit.test_service import UrlTable

CALLBACK = "https://hooks.example/labels?token=receiver-secret"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class RecordingSender:
    """CallbackSender port that records deliveries instead of POSTing them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def deliver(self, url: str, payload: Any) -> Delivery:
        self.sent.append((url, dict(payload)))
        return Delivery(True, 1, 204, None, utc_now())


@pytest.fixture
def queue(database: SqliteDatabase) -> SqliteQueue:
    return SqliteQueue(database, "callbacks-test", max_receives=3)


def make_service(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    labeller: OnnxLabeller,
    sender: RecordingSender,
    queue: SqliteQueue | None,
) -> UseCases:
    return wire(
        store=folder_store,
        table=sqlite_table,
        labeller=labeller,
        fetcher=UrlTable({}),
        limits=Limits(),
        callbacks=sender,
        notifier=SqliteNotifier(queue) if queue is not None else None,
    )


def queued_ids(queue: SqliteQueue) -> list[str]:
    messages = queue.receive(100, visibility_seconds=60)
    return callback_image_ids({"body": message.body} for message in messages)


def test_labelling_queues_the_callback_and_sends_nothing_itself(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    queue: SqliteQueue,
) -> None:
    sender = RecordingSender()
    service = make_service(folder_store, sqlite_table, tiny_labeller, sender, queue)
    with_callback = service.submission.submit_upload(TENANT, photo_png("coffee"), CALLBACK).record
    without = service.submission.submit_upload(TENANT, photo_png("chelsea")).record
    service.labelling.label_images([with_callback.image_id, without.image_id])
    assert sender.sent == []
    assert queued_ids(queue) == [with_callback.image_id]

    service.labelling.deliver_callbacks([with_callback.image_id, with_callback.image_id])
    [(url, payload)] = sender.sent  # a duplicate message sends once
    assert url == CALLBACK  # the full URL is kept for delivery...
    assert payload["status"] == "CLASSIFIED"
    assert payload["webhook"]["url"] == "https://hooks.example/labels"  # ...never shown
    webhook = service.records.get(TENANT, with_callback.image_id).webhook
    assert webhook is not None and webhook.status is WebhookStatus.DELIVERED


def test_a_replayed_batch_queues_a_still_pending_callback_again(
    database: SqliteDatabase,
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    tiny_labeller: OnnxLabeller,
    queue: SqliteQueue,
) -> None:
    service = make_service(folder_store, sqlite_table, tiny_labeller, RecordingSender(), queue)
    record = service.submission.submit_upload(TENANT, photo_png("coffee"), CALLBACK).record
    service.labelling.label_images([record.image_id])
    assert queued_ids(queue) == [record.image_id]
    service.labelling.label_images([record.image_id])  # the queueing may have been lost: again
    queue_again = SqliteQueue(database, queue.name)
    assert [json.loads(m.body)["image_id"] for m in queue_again.receive(10, 0)] == [record.image_id]


def test_without_a_queue_a_callback_is_recorded_failed_not_left_pending(
    folder_store: FolderImageStore, sqlite_table: SqliteLabelTable, tiny_labeller: OnnxLabeller
) -> None:
    sender = RecordingSender()
    service = make_service(folder_store, sqlite_table, tiny_labeller, sender, None)
    record = service.submission.submit_upload(TENANT, photo_png("coffee"), CALLBACK).record
    service.labelling.label_images([record.image_id])
    finished = service.records.get(TENANT, record.image_id)
    assert finished.status is Status.CLASSIFIED
    assert finished.webhook is not None and finished.webhook.status is WebhookStatus.FAILED
    assert finished.webhook.last_error == "this deployment has no webhook queue"
    assert sender.sent == []


def test_a_received_message_is_hidden_until_its_visibility_ends(database: SqliteDatabase) -> None:
    clock = FakeClock()
    queue = SqliteQueue(database, "q", clock=clock)
    queue.send(["a", "b"])
    assert [m.body for m in queue.receive(1, visibility_seconds=30)] == ["a"]
    assert [m.body for m in queue.receive(5, visibility_seconds=30)] == ["b"]
    assert queue.receive(5, visibility_seconds=30) == []
    clock.now += 31
    again = queue.receive(5, visibility_seconds=30)
    assert [(m.body, m.receive_count) for m in again] == [("a", 2), ("b", 2)]


def test_a_failing_message_is_retried_then_dead_lettered(database: SqliteDatabase) -> None:
    clock = FakeClock()
    queue = SqliteQueue(database, "q", max_receives=3, clock=clock)
    calls: list[int] = []

    def handler(event: dict[str, Any], context: object) -> None:
        [record] = event["Records"]
        calls.append(int(record["attributes"]["ApproximateReceiveCount"]))
        raise RuntimeError("the table is down")

    poller = LocalQueuePoller(queue, handler, workers=1, visibility_seconds=60, poll_seconds=0.01)
    queue.send(["m"])
    for _ in range(5):
        poller.deliver_one()
        clock.now += 100  # past any backoff
    assert calls == [1, 2, 3]
    assert [m.body for m in queue.dead_letters()] == ["m"]


def test_a_handled_message_is_deleted(database: SqliteDatabase) -> None:
    queue = SqliteQueue(database, "q")
    handled: list[Sequence[Any]] = []
    poller = LocalQueuePoller(queue, lambda event, _: handled.append(event["Records"]), 1, 60, 0.01)
    queue.send(["m"])
    assert poller.deliver_one()
    assert not poller.deliver_one()
    assert [records[0]["body"] for records in handled] == ["m"]
    assert queue.dead_letters() == []
