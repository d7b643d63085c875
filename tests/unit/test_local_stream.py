"""The local stream emulation: DynamoDB-stream-shaped batches, in order, at least once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.items import from_item, to_item
from chalicelib.adapters.sqlite import SqliteChangeLog, SqliteDatabase, SqliteLabelTable
from chalicelib.domain.models import Label, Status
from chalicelib.events.stream import image_ids_to_label
from chalicelib.local.stream import LocalStreamPoller, SqliteStreamSource
from tests.contract.test_label_table import T0, new_record
from tests.support import TENANT, poll

ARN = "arn:aws:dynamodb:local:000000000000:table/ImageLabels/stream/test"


class RecordingHandler:
    def __init__(self, failures: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.failures = failures

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        self.events.append(event)
        if len(self.events) <= self.failures:
            raise RuntimeError("handler crashed")


def poller(
    database: SqliteDatabase, handler: RecordingHandler, batch: int = 10
) -> LocalStreamPoller:
    source = SqliteStreamSource(SqliteChangeLog(database), ARN)
    return LocalStreamPoller(source, handler, batch, poll_seconds=0.01)


def test_insert_arrives_as_a_dynamodb_stream_insert_record(
    database: SqliteDatabase, sqlite_table: SqliteLabelTable
) -> None:
    record = new_record()
    sqlite_table.insert(record)
    handler = RecordingHandler()
    assert poller(database, handler).deliver_pending() == 1
    [stream_record] = handler.events[0]["Records"]
    assert stream_record["eventName"] == "INSERT"
    assert stream_record["eventSource"] == "aws:dynamodb"
    assert stream_record["eventSourceARN"] == ARN
    body = stream_record["dynamodb"]
    assert body["Keys"] == {"Id": {"S": record.image_id}}
    assert body["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert isinstance(body["ApproximateCreationDateTime"], int)
    assert body["NewImage"]["Status"] == {"S": "NOT_CLASSIFIED"}
    assert body["NewImage"]["Image"]["M"]["Width"] == {"N": "640"}
    assert "OldImage" not in body


def test_changes_arrive_as_modify_records_with_both_images(
    database: SqliteDatabase, sqlite_table: SqliteLabelTable
) -> None:
    record = new_record()
    sqlite_table.insert(record)
    sqlite_table.complete(record.image_id, (Label("pug", 0.25),), "m", T0, tenant=TENANT)
    sqlite_table.reopen(record.image_id)  # a relabel: the MODIFY that asks for labels
    handler = RecordingHandler()
    poller(database, handler).deliver_pending()
    insert, modify = handler.events[0]["Records"]
    assert modify["eventName"] == "MODIFY"
    assert modify["dynamodb"]["OldImage"]["Status"] == {"S": "CLASSIFIED"}
    assert modify["dynamodb"]["OldImage"]["Labels"]["L"][0]["M"]["Score"] == {"N": "0.25"}
    assert modify["dynamodb"]["NewImage"]["Status"] == {"S": "NOT_CLASSIFIED"}
    assert int(insert["dynamodb"]["SequenceNumber"]) < int(modify["dynamodb"]["SequenceNumber"])
    assert image_ids_to_label(handler.events[0]["Records"]) == [record.image_id] * 2


def test_records_the_mappings_filter_drops_are_passed_over_and_fill_no_batch(
    database: SqliteDatabase, sqlite_table: SqliteLabelTable
) -> None:
    """As the deployed mapping's FilterCriteria do: labelling's own writes (attempts,
    results) never reach the handler, and a batch is filled with records that ask for
    labels."""
    finished = [new_record() for _ in range(3)]
    for record in finished:
        sqlite_table.insert(record)
        sqlite_table.count_attempt(record.image_id)
        sqlite_table.complete(record.image_id, (Label("pug", 0.25),), "m", T0, tenant=TENANT)
    pending = [new_record() for _ in range(2)]
    for record in pending:
        sqlite_table.insert(record)
    handler = RecordingHandler()
    stream = poller(database, handler, batch=4)
    assert stream.deliver_pending() == 4
    assert stream.deliver_pending() == 1
    assert stream.deliver_pending() == 0
    delivered = [image_ids_to_label(event["Records"]) for event in handler.events]
    assert delivered == [
        [r.image_id for r in (*finished, pending[0])],
        [pending[1].image_id],
    ]
    assert all(
        record["eventName"] == "INSERT" for event in handler.events for record in event["Records"]
    )


def test_batches_respect_the_batch_size_and_keep_order(
    database: SqliteDatabase, sqlite_table: SqliteLabelTable
) -> None:
    records = [new_record() for _ in range(5)]
    for record in records:
        sqlite_table.insert(record)
    handler = RecordingHandler()
    stream = poller(database, handler, batch=2)
    assert [stream.deliver_pending() for _ in range(4)] == [2, 2, 1, 0]
    delivered = [image_ids_to_label(event["Records"]) for event in handler.events]
    assert delivered == [[r.image_id for r in records[i : i + 2]] for i in (0, 2, 4)]


def test_failed_batch_is_delivered_again(
    database: SqliteDatabase, sqlite_table: SqliteLabelTable
) -> None:
    record = new_record()
    sqlite_table.insert(record)
    handler = RecordingHandler(failures=1)
    stream = poller(database, handler)
    with pytest.raises(RuntimeError):
        stream.deliver_pending()
    assert stream.deliver_pending() == 1
    assert handler.events[0] == handler.events[1]


def test_a_new_process_resumes_where_the_last_one_stopped(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite3"
    first_db = SqliteDatabase(path)
    table = SqliteLabelTable(first_db)
    done, pending = new_record(), new_record()
    table.insert(done)
    poller(first_db, RecordingHandler()).deliver_pending()
    table.insert(pending)
    first_db.close()  # the server stops before the second insert is delivered

    handler = RecordingHandler()
    poller(SqliteDatabase(path), handler).deliver_pending()
    assert [image_ids_to_label(event["Records"]) for event in handler.events] == [
        [pending.image_id]
    ]


def test_background_thread_delivers_without_being_asked(
    database: SqliteDatabase, sqlite_table: SqliteLabelTable
) -> None:
    handler = RecordingHandler(failures=1)
    stream = poller(database, handler)
    stream.start()
    try:
        record = new_record()
        sqlite_table.insert(record)
        poll(lambda: len(handler.events), lambda count: count >= 2, timeout=10)
    finally:
        stream.stop()
    assert len(handler.events) >= 2, "the poller did not retry the failed batch"
    assert image_ids_to_label(handler.events[-1]["Records"]) == [record.image_id]


def test_image_ids_to_label_ignores_other_events_and_malformed_records() -> None:
    insert = {"eventName": "INSERT", "dynamodb": {"Keys": {"Id": {"S": "a"}}}}
    records: list[dict[str, Any]] = [
        insert,
        {"eventName": "MODIFY", "dynamodb": {"Keys": {"Id": {"S": "b"}}}},
        {"eventName": "REMOVE", "dynamodb": {"Keys": {"Id": {"S": "c"}}}},
        {"eventName": "INSERT", "dynamodb": {"Keys": {"Id": {"N": "1"}}}},
        {"eventName": "INSERT"},
    ]
    assert image_ids_to_label(records) == ["a"]


def test_item_round_trips_through_the_stored_shape() -> None:
    record = replace(
        new_record(),
        status=Status.CLASSIFIED,
        labels=(Label("pug", 0.5),),
        model="m",
        labelled_at=T0,
    )
    assert from_item(to_item(record)) == record
    assert to_item(record)["Label"] == "pug"


def test_a_finished_image_sent_back_to_pending_is_labelled_again() -> None:
    def modify(old: str, new: str) -> dict[str, Any]:
        return {
            "eventName": "MODIFY",
            "dynamodb": {
                "Keys": {"Id": {"S": f"{old}-{new}"}},
                "OldImage": {"Status": {"S": old}},
                "NewImage": {"Status": {"S": new}},
            },
        }

    records = [
        modify("CLASSIFIED", "NOT_CLASSIFIED"),
        modify("FAILED", "NOT_CLASSIFIED"),
        modify("NOT_CLASSIFIED", "NOT_CLASSIFIED"),  # an attempt counted
        modify("NOT_CLASSIFIED", "CLASSIFIED"),  # a result written
    ]
    assert image_ids_to_label(records) == ["CLASSIFIED-NOT_CLASSIFIED", "FAILED-NOT_CLASSIFIED"]


def test_a_commit_wakes_the_worker_before_its_poll_interval(
    database: SqliteDatabase, sqlite_table: SqliteLabelTable
) -> None:
    handler = RecordingHandler()
    source = SqliteStreamSource(SqliteChangeLog(database), ARN)
    # A poll interval far longer than the test waits: only the wake-up can deliver in time.
    worker = LocalStreamPoller(
        source, handler, 10, poll_seconds=600, wait_for_changes=database.wait_for_commit
    )
    worker.start()
    try:
        poll(lambda: None, lambda _: False, 0.3)  # the worker is asleep by now
        sqlite_table.insert(new_record())
        delivered = poll(lambda: len(handler.events), lambda count: count >= 1, 30)
    finally:
        worker.stop(timeout=0)
        sqlite_table.insert(new_record())  # wakes the worker, which then sees the stop
        worker.stop()
    assert delivered == 1
