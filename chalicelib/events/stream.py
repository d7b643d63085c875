"""DynamoDB stream records as Lambda hands them over: which images they ask to label.
Pure functions over the documented record shape (local mode builds them: local/stream.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

StreamRecord = dict[str, Any]


PENDING = {"S": "NOT_CLASSIFIED"}

# The same rule as image_ids_to_label, as the stream mapping's FilterCriteria patterns
# (EventBridge syntax): Lambda invokes the labelling function only for records matching
# one of them, so the writes labelling itself makes (attempts, results, callbacks) never
# invoke it. .chalice/merge-template.json carries exactly these (a test checks), and a
# test evaluates both on a table of records. `anything-but` matches only a Status that is
# there, so the third pattern takes an OldImage without a string Status.
LABELLING_FILTER_PATTERNS: tuple[dict[str, Any], ...] = (
    {"eventName": ["INSERT"], "dynamodb": {"Keys": {"Id": {"S": [{"exists": True}]}}}},
    {
        "eventName": ["MODIFY"],
        "dynamodb": {
            "Keys": {"Id": {"S": [{"exists": True}]}},
            "NewImage": {"Status": {"S": ["NOT_CLASSIFIED"]}},
            "OldImage": {"Status": {"S": [{"anything-but": ["NOT_CLASSIFIED"]}]}},
        },
    },
    {
        "eventName": ["MODIFY"],
        "dynamodb": {
            "Keys": {"Id": {"S": [{"exists": True}]}},
            "NewImage": {"Status": {"S": ["NOT_CLASSIFIED"]}},
            "OldImage": {"Status": {"S": [{"exists": False}]}},
        },
    },
)


def labelling_filter_criteria() -> dict[str, Any]:
    """LABELLING_FILTER_PATTERNS as a mapping's FilterCriteria (patterns are JSON text)."""
    return {
        "Filters": [
            {"Pattern": json.dumps(pattern, separators=(",", ":"))}
            for pattern in LABELLING_FILTER_PATTERNS
        ]
    }


def image_ids_to_label(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Ids of the images to label, in stream order: new images (INSERT), and finished ones
    sent back to NOT_CLASSIFIED (a MODIFY: relabel). Everything else is ignored."""
    ids = []
    for record in records:
        if not asks_for_labels(record):
            continue
        key = record.get("dynamodb", {}).get("Keys", {}).get("Id", {})
        if isinstance(key, Mapping) and isinstance(key.get("S"), str):
            ids.append(key["S"])
    return ids


def asks_for_labels(record: Mapping[str, Any]) -> bool:
    """Whether the record is a new image (INSERT) or a finished one sent back to
    NOT_CLASSIFIED (a MODIFY): what LABELLING_FILTER_PATTERNS let through."""
    event = record.get("eventName")
    if event == "INSERT":
        return True
    if event != "MODIFY":
        return False
    body = record.get("dynamodb", {})
    new_status = body.get("NewImage", {}).get("Status")
    old_status = body.get("OldImage", {}).get("Status")
    return bool(new_status == PENDING and old_status != PENDING)
