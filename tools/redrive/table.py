"""What redrive reads of the ImageLabels table: whether an image still waits for labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

PENDING = "NOT_CLASSIFIED"


class ImageStatuses:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._client = dynamodb_client
        self._table = table_name

    def status(self, image_id: str) -> str | None:
        """The record's Status (None: no record, or a record without one)."""
        answer = self._client.get_item(
            TableName=self._table,
            Key={"Id": {"S": image_id}},
            ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "Status"},
            ConsistentRead=True,
        )
        value = answer.get("Item", {}).get("Status", {}).get("S")
        return str(value) if value is not None else None

    def pending_submitted_before(self, cutoff: datetime) -> list[str]:
        """Images still NOT_CLASSIFIED that were submitted before `cutoff` (a whole-table
        scan: the fallback for batches whose records left the stream). A record whose
        SubmittedAt cannot be read is included: labelling will set it aside as FAILED."""
        found = []
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="#status = :pending",
            ProjectionExpression="Id, #submitted",
            ExpressionAttributeNames={"#status": "Status", "#submitted": "SubmittedAt"},
            ExpressionAttributeValues={":pending": {"S": PENDING}},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                submitted = _submitted_at(item)
                if submitted is None or submitted < cutoff:
                    found.append(str(item["Id"]["S"]))
        return sorted(found)


def _submitted_at(item: dict[str, Any]) -> datetime | None:
    text = item.get("SubmittedAt", {}).get("S")
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        return None
    return moment
