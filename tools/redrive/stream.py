"""A failed batch's records, read back from the table's stream (DynamoDB Streams), and the
stream-shaped event that hands their images to the labelling function again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from tools.redrive.failures import FailedBatch

# Answers that mean the records are no longer there: past the stream's 24 hours, or a
# stream that was replaced.
GONE = ("TrimmedDataAccessException", "ResourceNotFoundException", "ExpiredIteratorException")
# GetRecords pages read for one batch at most (a page may be empty on an open shard).
MAX_PAGES = 100


class RecordsExpired(Exception):
    """The batch's records have left the stream."""


class StreamRecords:
    """Reads a failed batch's records from the stream it came from."""

    def __init__(self, streams_client: Any) -> None:
        self._client = streams_client

    def of(self, batch: FailedBatch) -> list[dict[str, Any]]:
        """The records from the batch's first sequence number to its last, in order."""
        end = int(batch.end_sequence)
        found: list[dict[str, Any]] = []
        try:
            iterator = self._client.get_shard_iterator(
                StreamArn=batch.stream_arn,
                ShardId=batch.shard_id,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=batch.start_sequence,
            ).get("ShardIterator")
            for _ in range(MAX_PAGES):
                if not iterator:
                    break
                answer = self._client.get_records(ShardIterator=iterator, Limit=1000)
                for record in answer.get("Records", []):
                    if int(record["dynamodb"]["SequenceNumber"]) > end:
                        return found
                    found.append(record)
                if found and int(found[-1]["dynamodb"]["SequenceNumber"]) >= end:
                    return found
                iterator = answer.get("NextShardIterator")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in GONE:
                raise RecordsExpired(str(error)) from error
            raise
        return found


def labelling_event(
    image_ids: list[str], stream_arn: str, region: str, created: datetime
) -> dict[str, Any]:
    """A DynamoDB stream event of one INSERT record per image, as Lambda delivers them to
    label_new_images (the fields chalice's DynamoDBRecord reads), so that the labelling
    function runs the very code it runs for the stream."""
    records = []
    for image_id in image_ids:
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": int(created.timestamp()),
            "Keys": {"Id": {"S": image_id}},
            "SequenceNumber": "0",
            "SizeBytes": 0,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        records.append(
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "dynamodb": body,
                "eventSourceARN": stream_arn,
            }
        )
    return {"Records": records}
