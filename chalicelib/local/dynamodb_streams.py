"""A StreamSource on DynamoDB Streams (GetRecords), for `chalice local` on the AWS backend.

Lambda's event source mapping does this in AWS; locally (against moto_server, or a real
table) this reads every shard from its start, in order, and hands the records over in the
shape Lambda delivers: with `eventSourceARN`, and `ApproximateCreationDateTime` in epoch
seconds. Positions are kept in memory: a restarted server reads the stream from its start
again, which the idempotent handler makes harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.events.stream import StreamRecord
from chalicelib.local.stream import StreamBatch


class DynamoDBStreamSource:
    def __init__(self, client: Any, stream_arn: str) -> None:
        self._client = client
        self._stream_arn = stream_arn
        # shard id -> sequence number of the last acknowledged record (None: from the start)
        self._positions: dict[str, str | None] = {}

    def read(self, limit: int) -> StreamBatch:
        self._discover_shards()
        for shard_id, after in self._positions.items():
            records = self._records(shard_id, after, limit)
            if records:
                last = records[-1]["dynamodb"]["SequenceNumber"]
                return StreamBatch([self._as_lambda_record(r) for r in records], (shard_id, last))
        return StreamBatch([])

    def acknowledge(self, batch: StreamBatch) -> None:
        if batch.position is not None:
            shard_id, sequence_number = batch.position
            self._positions[shard_id] = sequence_number

    def _discover_shards(self) -> None:
        description = self._client.describe_stream(StreamArn=self._stream_arn)
        for shard in description["StreamDescription"].get("Shards", []):
            self._positions.setdefault(shard["ShardId"], None)

    def _records(self, shard_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        where: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            if after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = self._client.get_shard_iterator(
            StreamArn=self._stream_arn, ShardId=shard_id, **where
        )["ShardIterator"]
        answer = self._client.get_records(ShardIterator=iterator, Limit=limit)
        return list(answer.get("Records", []))

    def _as_lambda_record(self, record: dict[str, Any]) -> StreamRecord:
        body = dict(record["dynamodb"])
        created = body.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            body["ApproximateCreationDateTime"] = int(created.timestamp())
        return {**record, "dynamodb": body, "eventSourceARN": self._stream_arn}
