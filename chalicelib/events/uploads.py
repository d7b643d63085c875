"""S3 object-created notifications for direct uploads, as they reach the upload handler
through SQS (Chalice cannot package `@app.on_s3_event` for a bucket of another stack, so
the bucket notifies a queue and the handler reads the queue). Pure functions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus

UPLOAD_PREFIX = "uploads/"
# The bucket notifies this queue of direct uploads (cloudformation/s3.yaml).
UPLOAD_QUEUE = "imagelabeller-uploads"


def uploaded_image_ids(sqs_records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Image ids of the objects created under uploads/, from SQS records whose bodies are
    S3 notifications; S3's test events and anything else are ignored."""
    ids = []
    for message in sqs_records:
        try:
            notification = json.loads(message.get("body") or "{}")
        except ValueError:
            continue
        for s3_record in notification.get("Records", []) if isinstance(notification, dict) else []:
            if not str(s3_record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            key = unquote_plus(str(s3_record.get("s3", {}).get("object", {}).get("key", "")))
            if key.startswith(UPLOAD_PREFIX) and len(key) > len(UPLOAD_PREFIX):
                ids.append(key.removeprefix(UPLOAD_PREFIX))
    return ids
