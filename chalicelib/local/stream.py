"""The DynamoDB stream's event source, emulated for `chalice local` (it runs none).

A daemon thread reads a stream source in order and calls the very same handler Lambda
would call, with DynamoDB-stream-shaped records in batches. Two sources: the SQLite
change log (local backend) and DynamoDB Streams itself (AWS backend, e.g. on moto_server).
A source moves its position only when a batch is acknowledged, after the handler returned,
so a batch interrupted by a crash or a stop is delivered again (the handler is
idempotent). A batch whose handler raises is retried with backoff, as Lambda retries a
shard.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.adapters.items import Item, with_decimals
from chalicelib.adapters.sqlite import Change, SqliteChangeLog
from chalicelib.events.stream import StreamRecord, asks_for_labels

log = logging.getLogger(__name__)

LOCAL_REGION = "local"
CONSUMER = "label-handler"
MAX_BACKOFF_SECONDS = 10.0

StreamHandler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class StreamBatch:
    records: list[StreamRecord]
    # Where the source stands once this batch is acknowledged (source-specific).
    position: Any = field(default=None)


class StreamSource(Protocol):
    def read(self, limit: int) -> StreamBatch: ...

    def acknowledge(self, batch: StreamBatch) -> None: ...


@dataclass(frozen=True)
class LocalLambdaContext:
    """The few LambdaContext attributes a handler might read."""

    function_name: str = "imagelabeller-local-stream"
    aws_request_id: str = "local"
    memory_limit_in_mb: int = 0

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class SqliteStreamSource:
    """The local backend's change log, as DynamoDB stream records.

    Like the deployed mapping's FilterCriteria (events/stream.py), it hands on only the
    records that ask for labels, and fills a batch with up to `limit` of those: the writes
    labelling makes itself never cost an invocation or shrink a batch."""

    def __init__(self, change_log: SqliteChangeLog, stream_arn: str) -> None:
        self._log = change_log
        self._stream_arn = stream_arn

    def read(self, limit: int) -> StreamBatch:
        start = position = self._log.checkpoint(CONSUMER)
        records: list[StreamRecord] = []
        while len(records) < limit:
            changes = self._log.read_after(position, limit)
            if not changes:
                break
            for change in changes:
                position = change.seq
                if asks_for_labels(_statuses_only(change)):
                    records.append(change_record(change, self._stream_arn))
                    if len(records) == limit:
                        break
        return StreamBatch(records, position if position != start else None)

    def acknowledge(self, batch: StreamBatch) -> None:
        if batch.position is not None:
            self._log.save_checkpoint(CONSUMER, batch.position)


class LocalStreamPoller:
    def __init__(
        self,
        source: StreamSource,
        handler: StreamHandler,
        batch_size: int,
        poll_seconds: float,
        wait_for_changes: Callable[[float], object] | None = None,
    ) -> None:
        """`wait_for_changes(timeout)` returns early when the source may have new records
        (the SQLite database's commits); without it the poller sleeps `poll_seconds`."""
        self._source = source
        self._handler = handler
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._wait_for_changes = wait_for_changes or self._stop.wait
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="local-stream", daemon=True)
        self._thread.start()
        log.info("local stream emulation started", extra={"batch_size": self._batch_size})

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def deliver_pending(self) -> int:
        """Deliver one batch if there is one; returns how many records it held. Records
        the source passed over (filtered out) are acknowledged without a call."""
        batch = self._source.read(self._batch_size)
        if batch.records:
            self._handler({"Records": batch.records}, LocalLambdaContext())
        self._source.acknowledge(batch)
        return len(batch.records)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                delivered = self.deliver_pending()
                failures = 0
            except Exception:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.25 * 2**failures)
                log.exception(
                    "stream batch failed; retrying",
                    extra={"attempt": failures, "retry_in_s": delay},
                )
                self._stop.wait(delay)
                continue
            if delivered < self._batch_size and not self._stop.is_set():
                self._wait_for_changes(self._poll_seconds)


def _statuses_only(change: Change) -> StreamRecord:
    """What the filter reads of a change's stream record, without typing the whole item
    (labelling's own writes, half the log, are read only to be passed over)."""
    body = {
        side: {"Status": {"S": item["Status"]}}
        for side, item in (("NewImage", change.new_item), ("OldImage", change.old_item))
        if item is not None and isinstance(item.get("Status"), str)
    }
    return {"eventName": change.event_name, "dynamodb": body}


def change_record(change: Change, stream_arn: str) -> StreamRecord:
    """One change of the local change log as the stream record Lambda would get."""
    return build_stream_record(
        sequence_number=change.seq,
        event_name=change.event_name,
        image_id=change.image_id,
        old_item=change.old_item,
        new_item=change.new_item,
        created_at=change.created_at,
        size_bytes=change.size_bytes,
        stream_arn=stream_arn,
        region=LOCAL_REGION,
    )


def build_stream_record(
    *,
    sequence_number: int,
    event_name: str,
    image_id: str,
    old_item: Item | None,
    new_item: Item | None,
    created_at: float,
    size_bytes: int,
    stream_arn: str,
    region: str,
) -> StreamRecord:
    """One record as Lambda delivers it from a NEW_AND_OLD_IMAGES stream."""
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": int(created_at),
        "Keys": {"Id": {"S": image_id}},
        "SequenceNumber": f"{sequence_number:021d}",
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new_item is not None:
        body["NewImage"] = to_attribute_values(new_item)
    if old_item is not None:
        body["OldImage"] = to_attribute_values(old_item)
    body["SizeBytes"] = size_bytes
    return {
        "eventID": f"{sequence_number:032x}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }


def to_attribute_values(item: Item) -> dict[str, Any]:
    """An item in DynamoDB's typed JSON (`{"S": ...}`, `{"N": ...}`, `{"M": ...}`)."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {key: serializer.serialize(value) for key, value in with_decimals(item).items()}
