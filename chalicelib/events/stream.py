"""DynamoDB stream records as Lambda hands them over: which images they ask to label.
Pure functions over the documented record shape (local mode builds them: local/stream.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
