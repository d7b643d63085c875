"""DynamoDB stream records: reading the ones Lambda hands us, building the ones local
mode emulates. Pure functions over the documented record shape."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.adapters.items import Item, with_decimals

StreamRecord = dict[str, Any]


PENDING = {"S": "NOT_CLASSIFIED"}


def image_ids_to_label(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Ids of the images to label, in stream order: new images (INSERT), and finished ones
    sent back to NOT_CLASSIFIED (a MODIFY: relabel). Everything else is ignored."""
    ids = []
    for record in records:
        if not _asks_for_labels(record):
            continue
        key = record.get("dynamodb", {}).get("Keys", {}).get("Id", {})
        if isinstance(key, Mapping) and isinstance(key.get("S"), str):
            ids.append(key["S"])
    return ids


def _asks_for_labels(record: Mapping[str, Any]) -> bool:
    event = record.get("eventName")
    if event == "INSERT":
        return True
    if event != "MODIFY":
        return False
    body = record.get("dynamodb", {})
    new_status = body.get("NewImage", {}).get("Status")
    old_status = body.get("OldImage", {}).get("Status")
    return bool(new_status == PENDING and old_status != PENDING)


def build_stream_record(
    *,
    sequence_number: int,
    event_name: str,
    image_id: str,
    old_item: Item | None,
    new_item: Item | None,
    created_at: float,
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
    body["SizeBytes"] = len(json.dumps(body, default=str))
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
