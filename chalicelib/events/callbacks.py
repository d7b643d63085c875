"""SQS messages the app's queue handlers read: the shape Lambda hands them over in, and the
callback queue's own message. Pure functions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# The queue of finished images whose callback is to be sent (app.py, deliver_callbacks).
CALLBACK_QUEUE = "imagelabeller-callbacks"


def sqs_record(
    message_id: str, body: str, queue_arn: str, receive_count: int = 1
) -> dict[str, Any]:
    """One record of an SQS event, as Lambda's event source mapping delivers it."""
    return {
        "messageId": message_id,
        "receiptHandle": f"local-{message_id}",
        "body": body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
        "messageAttributes": {},
    }


def callback_message(image_id: str) -> str:
    return json.dumps({"image_id": image_id})


def callback_image_ids(sqs_records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The image ids of callback messages; anything else is ignored."""
    ids = []
    for record in sqs_records:
        try:
            body = json.loads(record.get("body") or "{}")
        except (ValueError, RecursionError):
            continue
        image_id = body.get("image_id") if isinstance(body, dict) else None
        if isinstance(image_id, str) and image_id:
            ids.append(image_id)
    return ids
