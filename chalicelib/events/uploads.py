"""S3 object-created notifications for direct uploads, as they reach the upload handler
through SQS (Chalice cannot package `@app.on_s3_event` for a bucket of another stack, so
the bucket notifies a queue and the handler reads the queue). Pure functions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from chalicelib.domain.models import LEGACY_TENANT

UPLOAD_PREFIX = "uploads/"
# The bucket notifies this queue of direct uploads (cloudformation/s3.yaml).
UPLOAD_QUEUE = "imagelabeller-uploads"


@dataclass(frozen=True)
class UploadedObject:
    """An object created under uploads/: the tenant and image id it is for, and its size in
    bytes as S3 reported it (None if the notification gave none)."""

    image_id: str
    size: int | None
    tenant: str = LEGACY_TENANT


def uploaded_objects(sqs_records: Iterable[Mapping[str, Any]]) -> list[UploadedObject]:
    """The objects created under uploads/, from SQS records whose bodies are S3
    notifications; S3's test events and anything else are ignored."""
    uploads = []
    for message in sqs_records:
        try:
            notification = json.loads(message.get("body") or "{}")
        except ValueError:
            continue
        for s3_record in notification.get("Records", []) if isinstance(notification, dict) else []:
            if not str(s3_record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            s3_object = s3_record.get("s3", {}).get("object", {})
            key = unquote_plus(str(s3_object.get("key", "")))
            parsed = parse_upload_key(key)
            if parsed is not None:
                tenant, image_id = parsed
                uploads.append(UploadedObject(image_id, _size(s3_object), tenant))
    return uploads


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """The tenant and image id of an upload's key, `uploads/<tenant>/<id>`; a form issued
    before tenancy made `uploads/<id>`, the legacy tenant's."""
    if not key.startswith(UPLOAD_PREFIX):
        return None
    parts = key.removeprefix(UPLOAD_PREFIX).split("/")
    if len(parts) == 1 and parts[0]:
        return LEGACY_TENANT, parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    return None


def uploaded_image_ids(sqs_records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The image ids of `uploaded_objects`."""
    return [upload.image_id for upload in uploaded_objects(sqs_records)]


def _size(s3_object: Mapping[str, Any]) -> int | None:
    size = s3_object.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return None
    return size
