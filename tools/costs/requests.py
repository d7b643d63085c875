"""What one image costs in requests: DynamoDB item sizes and units, API, Lambda, S3 and log
bytes, counted from the code (docs/COST.md, "Requests per image")."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tools.costs.inputs import Workload

KB = 1024

# Counted from the code (docs/COST.md, "Requests per image").
# Stream records per image that reach label_new_images: the INSERT of LabelTable.insert()
# and the MODIFY of LabelTable.complete(). The event source has no filter.
STREAM_RECORDS_PER_IMAGE = 2
# ImageLabelIndex items per CLASSIFIED image: one per label kept (IMAGELABELLER_TOP_K).
LABELS_KEPT = 10
# Per API request, the key check (chalicelib/http/callers.py): the key's item, read
# consistently (under 4 KB: 1 read unit), and the key's request rate, one UpdateItem of a
# small item (1 write unit). Per submit, the day's image count of the key: 1 UpdateItem.
KEY_READ_UNITS_PER_REQUEST = 1
RATE_WRITE_UNITS_PER_REQUEST = 1
QUOTA_WRITE_UNITS_PER_SUBMIT = 1
# A read of at most 4 KB: strongly consistent 1 unit, eventually consistent (a GSI) 0.5.
STRONG_READ_UNIT_BYTES = 4 * KB
EVENTUAL_READ_UNITS = 0.5

# Bytes of the log lines, from the code's own lines (chalicelib/logs.py, adapters/emf.py).
ACCEPTED_LINE_BYTES = 450  # "image accepted", one per submit
CLASSIFIED_LINE_BYTES = 380  # "image classified", one per image
BATCH_LINE_BYTES = 300  # "labelled a batch", one per labelling invocation
EMF_SUBMIT_LINE_BYTES = 220  # ImagesSubmitted, one per submit
EMF_BATCH_LINE_BYTES = 300  # BatchSize, ImagesClassified, ImagesFailed, one per batch
EMF_LATENCY_BYTES_PER_IMAGE = 14  # one LabelLatency value per classified image
LAMBDA_PLATFORM_BYTES = 400  # START, END and REPORT, per invocation (assumed)


@dataclass(frozen=True)
class ItemSizes:
    """DynamoDB item sizes in bytes, by DynamoDB's own rules, of a representative record."""

    new_record: int
    classified_record: int
    sha256_index_entry: int
    label_index_entry: int
    # The ImageLabelIndex item that claims the image's bytes (dynamodb.digest_claim_key).
    digest_claim: int


@dataclass(frozen=True)
class RequestsPerImage:
    api_gateway: float
    lambda_invocations: float
    s3_puts: float
    s3_gets: float
    dynamodb_write_units: float
    dynamodb_read_units: float
    log_bytes: float


def dynamodb_value_bytes(value: object) -> int:
    """The size DynamoDB bills for one attribute value (its name not included)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, int | float | Decimal):
        digits = Decimal(repr(value) if isinstance(value, float) else value).normalize()
        return math.ceil(len(digits.as_tuple().digits) / 2) + 1
    if isinstance(value, Mapping):
        return 3 + sum(
            len(str(name).encode()) + dynamodb_value_bytes(inner) + 1
            for name, inner in value.items()
        )
    if isinstance(value, list | tuple):
        return 3 + sum(dynamodb_value_bytes(inner) + 1 for inner in value)
    raise TypeError(f"not a DynamoDB value: {value!r}")


def dynamodb_item_bytes(item: Mapping[str, object]) -> int:
    """Attribute names plus values: what write units (1 KB) and read units (4 KB) count."""
    return sum(len(name.encode()) + dynamodb_value_bytes(value) for name, value in item.items())


def representative_item_sizes() -> ItemSizes:
    """The items the code writes for one image fetched by URL and labelled with 10 labels
    (the names and scores of the README's coffee photo)."""
    from chalicelib.adapters.items import digest_claim_key, index_entries, to_item
    from chalicelib.domain.models import ImageInfo, ImageRecord, Label, Status

    submitted = datetime(2026, 11, 26, 5, 11, 58, 14933, tzinfo=UTC)
    sha256 = "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"
    new = ImageRecord(
        image_id="7bb1e1a1-6e06-47f8-a44f-5938329f0fe2",
        status=Status.NOT_CLASSIFIED,
        image=ImageInfo("JPEG", 4032, 3024, 2_345_678, sha256),
        submitted_at=submitted,
        source_url="https://images.example.com/uploads/2026/11/26/IMG_20261126_051158.jpg",
    )
    labels = tuple(
        Label(name, score)
        for name, score in (
            ("espresso", 0.951062),
            ("cup", 0.014992),
            ("consomme", 0.007724),
            ("chocolate sauce", 0.00407),
            ("coffee mug", 0.003377),
            ("eggnog", 0.002581),
            ("coffeepot", 0.001933),
            ("soup bowl", 0.001372),
            ("trifle", 0.000951),
            ("ice cream", 0.000847),
        )
    )
    classified = replace(
        new,
        status=Status.CLASSIFIED,
        labels=labels,
        model="efficientnet-lite0/onnx",
        labelled_at=submitted + timedelta(seconds=0.426),
    )
    return ItemSizes(
        new_record=dynamodb_item_bytes(to_item(new)),
        classified_record=dynamodb_item_bytes(to_item(classified)),
        sha256_index_entry=dynamodb_item_bytes({"Id": new.image_id, "Sha256": sha256}),
        label_index_entry=max(
            dynamodb_item_bytes(entry) for entry in index_entries(new.tenant, new.image_id, labels)
        ),
        digest_claim=dynamodb_item_bytes(
            {**digest_claim_key(new.tenant, sha256), "ImageId": new.image_id}
        ),
    )


def write_units(item_bytes: int) -> int:
    return math.ceil(item_bytes / KB)


def strong_read_units(item_bytes: int) -> int:
    return math.ceil(item_bytes / STRONG_READ_UNIT_BYTES)


def requests_per_image(workload: Workload, batch_size: int, sizes: ItemSizes) -> RequestsPerImage:
    """What one image costs in requests, counted from the code (docs/COST.md)."""
    reads = workload.reads_per_image
    images_per_batch = batch_size / STREAM_RECORDS_PER_IMAGE
    label_invocations = STREAM_RECORDS_PER_IMAGE / batch_size
    api_requests = 1 + reads
    write = (
        api_requests * RATE_WRITE_UNITS_PER_REQUEST  # each request's rate
        + QUOTA_WRITE_UNITS_PER_SUBMIT  # the submit's image, counted for its key's day
        + 2 * write_units(sizes.new_record)  # the record's put, in a transaction
        + write_units(sizes.sha256_index_entry)  # its Sha256Index entry
        + 2 * write_units(sizes.digest_claim)  # the claim on its bytes, in the transaction
        + 2 * write_units(max(sizes.new_record, sizes.classified_record))  # transactional update
        + 2 * LABELS_KEPT * write_units(sizes.label_index_entry)  # transactional puts
    )
    read = (
        api_requests * KEY_READ_UNITS_PER_REQUEST  # each request's key
        + strong_read_units(sizes.digest_claim)  # deduplication reads the tenant's claim
        + EVENTUAL_READ_UNITS  # then the Sha256Index Query (no claim: new bytes)
        + strong_read_units(sizes.new_record)  # the labeller reads the pending record
        + reads * strong_read_units(sizes.classified_record)  # GET /images/{id}
    )
    log_bytes = (
        ACCEPTED_LINE_BYTES
        + EMF_SUBMIT_LINE_BYTES
        + CLASSIFIED_LINE_BYTES
        + EMF_LATENCY_BYTES_PER_IMAGE
        + (BATCH_LINE_BYTES + EMF_BATCH_LINE_BYTES) / images_per_batch
        + LAMBDA_PLATFORM_BYTES * (1 + label_invocations + reads)
    )
    return RequestsPerImage(
        api_gateway=api_requests,
        lambda_invocations=1 + label_invocations + reads,
        s3_puts=1,
        s3_gets=1,
        dynamodb_write_units=write,
        dynamodb_read_units=read,
        log_bytes=log_bytes,
    )
