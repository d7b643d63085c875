"""Lambda's on-failure records for a DynamoDB stream, as the failure queue holds them.

Lambda records where the batch it gave up on lies in the stream, not the records
themselves: `DDBStreamBatchInfo` names the stream, the shard and the first and last
sequence numbers, and `requestContext.condition` says why it gave up
(`RetryAttemptsExhausted`, `MaxRecordAgeExceeded`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class NotAFailureRecord(ValueError):
    """The message is not a stream on-failure record (sent by hand, another source)."""


@dataclass(frozen=True)
class FailedBatch:
    """One stream batch Lambda gave up on, from one queue message."""

    message_id: str
    receipt_handle: str
    condition: str
    stream_arn: str
    shard_id: str
    start_sequence: str
    end_sequence: str
    batch_size: int
    # When the batch's last record reached the stream, if the record says.
    last_arrival: datetime | None

    def describe(self) -> str:
        return (
            f"{self.batch_size} record(s) of {self.shard_id}, sequence numbers "
            f"{self.start_sequence}..{self.end_sequence} ({self.condition})"
        )


def failed_batch(message: Mapping[str, Any]) -> FailedBatch:
    """The batch an SQS message (ReceiveMessage's shape) records; NotAFailureRecord if it
    records none."""
    try:
        body = json.loads(message["Body"])
        info = body["DDBStreamBatchInfo"]
        condition = str(body.get("requestContext", {}).get("condition", "unknown"))
        return FailedBatch(
            message_id=str(message["MessageId"]),
            receipt_handle=str(message["ReceiptHandle"]),
            condition=condition,
            stream_arn=str(info["streamArn"]),
            shard_id=str(info["shardId"]),
            start_sequence=str(info["startSequenceNumber"]),
            end_sequence=str(info["endSequenceNumber"]),
            batch_size=int(info.get("batchSize", 0)),
            last_arrival=_timestamp(info.get("approximateArrivalOfLastRecord")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise NotAFailureRecord(f"not a stream on-failure record: {error!r}") from error


def _timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
