"""ImageRecord <-> the stored item (the `ImageLabels` table's attribute names).

One shape for every table backend: DynamoDB stores it as is, SQLite as JSON, and the local
stream emulation puts it in its records' `NewImage`. `Label` keeps the original's top-5
string so the legacy GetImageLabel contract reads one attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.models import (
    LEGACY_TENANT,
    ImageInfo,
    ImageRecord,
    Label,
    PreviousResult,
    Status,
    WebhookState,
    WebhookStatus,
    legacy_label,
)

Item = dict[str, Any]


def to_item(record: ImageRecord) -> Item:
    item: Item = {
        "Id": record.image_id,
        "Tenant": record.tenant,
        "Status": record.status.value,
        "Label": record.legacy_label,
        "SubmittedAt": record.submitted_at.isoformat(),
        "Attempts": record.attempts,
        "Image": {
            "Format": record.image.format,
            "Width": record.image.width,
            "Height": record.image.height,
            "SizeBytes": record.image.size_bytes,
            "Sha256": record.image.sha256,
        },
    }
    # Top level too, for the table's Sha256Index (deduplication).
    item["Sha256"] = record.image.sha256
    if record.previous is not None:
        item["Previous"] = previous_item(record.previous)
    if record.webhook is not None:
        item["Webhook"] = webhook_item(record.webhook)
    optional: dict[str, Any] = {
        "SourceUrl": record.source_url,
        "Model": record.model,
        "Error": record.error,
        "LabelledAt": record.labelled_at.isoformat() if record.labelled_at else None,
    }
    item.update({key: value for key, value in optional.items() if value is not None})
    if record.labels:
        item["Labels"] = labels_item(record.labels)
    return item


def label_key(name: str) -> str:
    """How a label name is matched in search: case and surrounding spaces do not matter."""
    return " ".join(name.split()).casefold()


def tenant_label_key(tenant: str, name: str) -> str:
    """The search key of a label within one tenant's images: `<tenant>#<label key>`.

    Tenants are lower-case letters, digits and "-" (domain/api_keys.py), so the first "#"
    ends the tenant and no tenant's keys can be another's. Keys written before tenancy
    were the bare label key; the migration prefixes them with `legacy#`."""
    return f"{tenant}#{label_key(name)}"


def tenant_of(item: Mapping[str, Any]) -> str:
    """The item's tenant; records written before tenancy have none and are `legacy`'s."""
    tenant = item.get("Tenant")
    return tenant if isinstance(tenant, str) and tenant else LEGACY_TENANT


def labels_item(labels: tuple[Label, ...]) -> list[dict[str, Any]]:
    return [{"Name": label.name, "Score": label.score} for label in labels]


def classified_changes(labels: tuple[Label, ...], model: str, at: datetime) -> Item:
    """The attributes that labelling a pending record sets."""
    return {
        "Status": Status.CLASSIFIED.value,
        "Label": legacy_label(Status.CLASSIFIED, labels),
        "Labels": labels_item(labels),
        "Model": model,
        "LabelledAt": at.isoformat(),
    }


def failed_changes(error: str, model: str | None, at: datetime) -> Item:
    """The attributes that failing a pending record sets."""
    changes: Item = {
        "Status": Status.FAILED.value,
        "Label": legacy_label(Status.FAILED, ()),
        "Error": error,
        "LabelledAt": at.isoformat(),
    }
    if model is not None:
        changes["Model"] = model
    return changes


def from_item(item: Mapping[str, Any]) -> ImageRecord:
    image = item["Image"]
    labelled_at = item.get("LabelledAt")
    return ImageRecord(
        image_id=item["Id"],
        tenant=tenant_of(item),
        status=Status(item["Status"]),
        image=ImageInfo(
            format=image["Format"],
            width=int(image["Width"]),
            height=int(image["Height"]),
            size_bytes=int(image["SizeBytes"]),
            sha256=image["Sha256"],
        ),
        submitted_at=datetime.fromisoformat(item["SubmittedAt"]),
        source_url=item.get("SourceUrl"),
        labels=labels_from_item(item.get("Labels", [])),
        model=item.get("Model"),
        error=item.get("Error"),
        labelled_at=datetime.fromisoformat(labelled_at) if labelled_at else None,
        attempts=int(item.get("Attempts", 0)),
        previous=previous_from_item(item["Previous"]) if "Previous" in item else None,
        webhook=webhook_from_item(item["Webhook"]) if "Webhook" in item else None,
    )


def webhook_item(webhook: WebhookState) -> Item:
    item: Item = {
        "Url": webhook.url,
        "Status": webhook.status.value,
        "Attempts": webhook.attempts,
    }
    if webhook.last_attempt_at is not None:
        item["LastAttemptAt"] = webhook.last_attempt_at.isoformat()
    if webhook.last_error is not None:
        item["LastError"] = webhook.last_error
    return item


def webhook_from_item(item: Mapping[str, Any]) -> WebhookState:
    last = item.get("LastAttemptAt")
    return WebhookState(
        url=item["Url"],
        status=WebhookStatus(item["Status"]),
        attempts=int(item.get("Attempts", 0)),
        last_attempt_at=datetime.fromisoformat(last) if last else None,
        last_error=item.get("LastError"),
    )


def previous_item(previous: PreviousResult) -> Item:
    item: Item = {"Status": previous.status.value, "Labels": labels_item(previous.labels)}
    if previous.model is not None:
        item["Model"] = previous.model
    if previous.labelled_at is not None:
        item["LabelledAt"] = previous.labelled_at.isoformat()
    return item


def previous_from_item(item: Mapping[str, Any]) -> PreviousResult:
    labelled_at = item.get("LabelledAt")
    return PreviousResult(
        status=Status(item["Status"]),
        labels=labels_from_item(item.get("Labels", [])),
        model=item.get("Model"),
        labelled_at=datetime.fromisoformat(labelled_at) if labelled_at else None,
    )


def labels_from_item(labels: list[Any]) -> tuple[Label, ...]:
    return tuple(Label(name=label["Name"], score=float(label["Score"])) for label in labels)


def reopened(item: Item) -> Item:
    """The item of a finished record sent to be labelled again, keeping its last result."""
    previous = previous_from_item(item)
    new = {
        key: value
        for key, value in item.items()
        if key not in ("Labels", "Model", "Error", "LabelledAt", "Previous")
    }
    new.update(
        Status=Status.NOT_CLASSIFIED.value,
        Label=legacy_label(Status.NOT_CLASSIFIED, ()),
        Attempts=0,
        Previous=previous_item(previous),
    )
    return new


def plain_numbers(value: Any) -> Any:
    """Decimals (as boto3 reads DynamoDB numbers) back to int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain_numbers(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [plain_numbers(inner) for inner in value]
    return value


def with_decimals(value: Any) -> Any:
    """The item with floats as Decimal, as boto3's DynamoDB serializer requires."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: with_decimals(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [with_decimals(inner) for inner in value]
    return value


def index_entries(tenant: str, image_id: str, labels: tuple[Label, ...]) -> list[Item]:
    """The search table's items for an image's labels, in its tenant's part of the index."""
    return [
        {
            "LabelKey": tenant_label_key(tenant, label.name),
            "Rank": f"{1 - label.score:.9f}#{image_id}",
            "ImageId": image_id,
            "Name": label.name,
            "Score": label.score,
        }
        for label in labels
    ]


def digest_claim(tenant: str, sha256: str) -> str:
    """What a record claims to dedupe its bytes: the bytes within its tenant's images (the
    same bytes from two tenants are two images)."""
    return f"{tenant}#{sha256}"


def digest_claim_key(tenant: str, sha256: str) -> Item:
    """The search table's key of the item that claims an image's bytes for one record of
    one tenant: `SHA256#<tenant>#<sha256>` (before tenancy: `SHA256#<sha256>`).

    Its `LabelKey` starts with upper-case letters, which search keys (a lower-case tenant
    first) never do, so no search reads it and no label's entries can collide with it."""
    return {"LabelKey": f"SHA256#{digest_claim(tenant, sha256)}", "Rank": "IMAGE"}
