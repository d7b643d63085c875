"""Dollars per 1,000 images on AWS: the in-Lambda ONNX labeller, the SageMaker endpoint and
Rekognition DetectLabels, from the figures `make bench` measures (docs/COST.md explains
every formula, price and count).

    .venv/bin/python scripts/cost.py                            # the table, for a terminal
    .venv/bin/python scripts/cost.py --markdown                 # the same table in markdown
    .venv/bin/python scripts/cost.py --write-doc docs/COST.md   # refresh the doc's table
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_RESULTS = ROOT / "docs" / "performance.json"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
DEFAULT_STAGE = "prod-ca-central-1"
FALLBACK_LABEL_MEMORY_MB = 2048
FALLBACK_API_MEMORY_MB = 1024
MARKER_START = "<!-- cost-table:start -->"
MARKER_END = "<!-- cost-table:end -->"

# Lambda gives a function one full vCPU at 1,769 MB, and a share of one in proportion below.
ONE_VCPU_MB = 1769
HOURS_PER_MONTH = 730
GIB = 1024**3
KB = 1024
REMEMBERED = "list price as remembered, not checked online"

# Counted from the code (docs/COST.md, "Requests per image").
# Stream records per image that reach label_new_images: the INSERT of LabelTable.insert()
# and the MODIFY of LabelTable.complete(). The event source has no filter.
STREAM_RECORDS_PER_IMAGE = 2
# ImageLabelIndex items per CLASSIFIED image: one per label kept (IMAGELABELLER_TOP_K).
LABELS_KEPT = 10
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


class CostInputError(Exception):
    """An input the cost model cannot use: the results file, a stage, the doc's markers."""


@dataclass(frozen=True)
class Price:
    dollars: float  # per `unit`, as the formulas use it
    unit: str
    quoted: str  # as the price list states it
    source: str


@dataclass(frozen=True)
class Prices:
    """On-demand list prices in one region, each with where it came from."""

    region: str
    lambda_gb_second_x86: Price
    lambda_gb_second_arm64: Price
    lambda_request: Price
    api_gateway_rest_request: Price
    s3_put: Price
    s3_get: Price
    s3_storage: Price
    dynamodb_write_unit: Price
    dynamodb_read_unit: Price
    dynamodb_storage: Price
    cloudwatch_logs_ingestion: Price
    sagemaker_ml_m5_large_hour: Price
    sagemaker_data_processed: Price
    rekognition_detect_labels: Price

    def listed(self) -> list[tuple[str, Price]]:
        return [(PRICE_NAMES[item.name], getattr(self, item.name)) for item in fields(self)[1:]]


PRICE_NAMES = {
    "lambda_gb_second_x86": "Lambda duration, x86_64",
    "lambda_gb_second_arm64": "Lambda duration, arm64",
    "lambda_request": "Lambda requests",
    "api_gateway_rest_request": "API Gateway REST API requests",
    "s3_put": "S3 Standard PUT",
    "s3_get": "S3 Standard GET",
    "s3_storage": "S3 Standard storage",
    "dynamodb_write_unit": "DynamoDB on-demand write request units",
    "dynamodb_read_unit": "DynamoDB on-demand read request units",
    "dynamodb_storage": "DynamoDB Standard storage",
    "cloudwatch_logs_ingestion": "CloudWatch Logs ingestion (standard)",
    "sagemaker_ml_m5_large_hour": "SageMaker real-time inference, ml.m5.large",
    "sagemaker_data_processed": "SageMaker real-time inference, data processed in and out",
    "rekognition_detect_labels": "Rekognition DetectLabels (Image, group 2)",
}

US_WEST_2 = Prices(
    region="us-west-2",
    lambda_gb_second_x86=Price(
        0.0000166667,
        "GB-second",
        "$0.0000166667 per GB-second (first 6 billion GB-seconds a month)",
        "https://aws.amazon.com/lambda/pricing/ (worked example: $0.00001667 per GB-s)",
    ),
    lambda_gb_second_arm64=Price(
        0.0000133334,
        "GB-second",
        "$0.0000133334 per GB-second (first 7.5 billion GB-seconds a month)",
        "https://cloudchipr.com/blog/aws-lambda-pricing (third party)",
    ),
    lambda_request=Price(
        0.20 / 1e6,
        "request",
        "$0.20 per million requests",
        "https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html",
    ),
    api_gateway_rest_request=Price(
        3.50 / 1e6,
        "request",
        "$3.50 per million requests (first 333 million a month)",
        "https://docs.aws.amazon.com/pt_br/whitepapers/latest/"
        "best-practices-api-gateway-private-apis-integration/cost-optimization.html",
    ),
    s3_put=Price(
        0.005 / 1000,
        "request",
        "$0.005 per 1,000 PUT, COPY, POST, LIST requests",
        "https://devnotes.tech/understanding-aws-s3-pricing-a-complete-cost-breakdown-with-examples"
        " (third party)",
    ),
    s3_get=Price(
        0.0004 / 1000,
        "request",
        "$0.0004 per 1,000 GET, SELECT and other requests",
        "https://devnotes.tech/understanding-aws-s3-pricing-a-complete-cost-breakdown-with-examples"
        " (third party)",
    ),
    s3_storage=Price(
        0.023,
        "GB-month",
        "$0.023 per GB-month (first 50 TB)",
        "https://cloudburn.io/blog/amazon-s3-pricing (third party)",
    ),
    dynamodb_write_unit=Price(
        0.625 / 1e6,
        "write request unit",
        "$0.625 per million write request units",
        "https://airbyte.com/data-engineering-resources/dynamodb-pricing (third party:"
        " after the 50 % cut of 1 November 2024)",
    ),
    dynamodb_read_unit=Price(
        0.125 / 1e6,
        "read request unit",
        "$0.125 per million read request units",
        "https://airbyte.com/data-engineering-resources/dynamodb-pricing (third party:"
        " after the 50 % cut of 1 November 2024)",
    ),
    dynamodb_storage=Price(
        0.25, "GB-month", "$0.25 per GB-month (after the free 25 GB)", REMEMBERED
    ),
    cloudwatch_logs_ingestion=Price(
        0.50,
        "GB",
        "$0.50 per GB ingested",
        "https://c3x.dev/blog/cloudwatch-logs-cost-optimization (third party)",
    ),
    sagemaker_ml_m5_large_hour=Price(0.115, "instance-hour", "$0.115 per hour", REMEMBERED),
    sagemaker_data_processed=Price(0.016, "GB", "$0.016 per GB in, $0.016 per GB out", REMEMBERED),
    rekognition_detect_labels=Price(
        0.001,
        "image",
        "$0.001 per image ($1.00 per 1,000) for the first million images a month",
        "https://raw.githubusercontent.com/api-evangelist/amazon-rekognition/refs/heads/main/"
        "plans/amazon-rekognition-plans-pricing.yml (transcribed from"
        " https://aws.amazon.com/rekognition/pricing/)",
    ),
)


@dataclass(frozen=True)
class Measured:
    """What `make bench` measured (docs/performance.json)."""

    model: str
    labeller_ms_per_image_one_thread: float
    label_batch_size: int
    cold_start_s: float
    peak_rss_mb: float
    submit_ms_p50: float


REQUIRED_KEYS = {
    "labeller_ms_per_image_one_thread": float,
    "label_batch_size": int,
    "cold_start_s": float,
    "peak_rss_mb": float,
    "submit_ms_p50": float,
    "model": str,
}


@dataclass(frozen=True)
class Workload:
    """What the prices are applied to: the deployment, the traffic, and the assumptions that
    no benchmark measures (each is named in docs/COST.md)."""

    images_per_month: int = 100_000
    label_memory_mb: int = FALLBACK_LABEL_MEMORY_MB
    api_memory_mb: int = FALLBACK_API_MEMORY_MB
    architecture: str = "x86_64"
    images_per_cold_start: int = 1000
    reads_per_image: int = 1  # GET /images/{id} until the labels are there
    # Assumed: milliseconds waiting on AWS, which a local benchmark cannot measure.
    label_io_ms_per_image: float = 55.0  # GetItem, S3 GET, TransactWriteItems, GetItem
    submit_io_ms: float = 60.0  # Query, S3 PUT, PutItem
    read_ms: float = 10.0  # one GET /images/{id}: a GetItem
    stored_image_kb: float = 250.0
    # Assumed for the JumpStart Inception V3 endpoint (replace with its ModelLatency).
    sagemaker_ms_per_image: float = 150.0
    sagemaker_kb_per_image: float = 100.0  # the JPEG sent plus the 1,001 scores returned
    sagemaker_instances: int = 1


@dataclass(frozen=True)
class ItemSizes:
    """DynamoDB item sizes in bytes, by DynamoDB's own rules, of a representative record."""

    new_record: int
    classified_record: int
    sha256_index_entry: int
    label_index_entry: int


@dataclass(frozen=True)
class RequestsPerImage:
    api_gateway: float
    lambda_invocations: float
    s3_puts: float
    s3_gets: float
    dynamodb_write_units: float
    dynamodb_read_units: float
    log_bytes: float


@dataclass(frozen=True)
class Row:
    option: str
    item: str
    per_1000: float | None  # dollars per 1,000 images
    per_month: float | None = None  # dollars a month at the workload's volume
    ratio: float | None = None  # a total divided by Rekognition's
    total: bool = False


# --- reading the inputs ---------------------------------------------------------------------


def measured_from(results: Mapping[str, object], source: str) -> Measured:
    """The measured figures, or CostInputError naming every key missing or unusable."""
    missing = [key for key in REQUIRED_KEYS if key not in results]
    if missing:
        raise CostInputError(
            f"{source} lacks {', '.join(repr(key) for key in missing)}: "
            "run `make bench` to write it, or pass --results PATH"
        )
    for key, kind in REQUIRED_KEYS.items():
        value = results[key]
        if not _is_kind(value, kind):
            raise CostInputError(f"{source}: {key!r} must be {_kind_name(kind)}, not {value!r}")
    batch = results["label_batch_size"]
    assert isinstance(batch, int)
    if batch < 1:
        raise CostInputError(f"{source}: 'label_batch_size' must be at least 1, not {batch}")
    return Measured(
        model=str(results["model"]),
        labeller_ms_per_image_one_thread=_number(results, "labeller_ms_per_image_one_thread"),
        label_batch_size=batch,
        cold_start_s=_number(results, "cold_start_s"),
        peak_rss_mb=_number(results, "peak_rss_mb"),
        submit_ms_p50=_number(results, "submit_ms_p50"),
    )


def _is_kind(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value) and value >= 0
    if kind is int:
        return isinstance(value, int)
    return isinstance(value, str) and bool(value.strip())


def _kind_name(kind: type) -> str:
    return {float: "a number of at least 0", int: "an integer", str: "a non-empty string"}[kind]


def _number(results: Mapping[str, object], key: str) -> float:
    value = results[key]
    assert isinstance(value, int | float)
    return float(value)


def load_measured(path: Path) -> Measured:
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise CostInputError(
            f"{path} does not exist: run `make bench` to write it, or pass --results PATH"
        ) from None
    except (OSError, ValueError) as error:
        raise CostInputError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(results, dict):
        raise CostInputError(f"{path} must hold a JSON object")
    return measured_from(results, str(path))


def stage_memory(config_path: Path, stage: str) -> tuple[int, int]:
    """(label_new_images MB, api_handler MB) of a stage in .chalice/config.json; the
    fallbacks when the file, the stage or the setting is absent."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return FALLBACK_LABEL_MEMORY_MB, FALLBACK_API_MEMORY_MB
    functions = config.get("stages", {}).get(stage, {}).get("lambda_functions", {})

    def memory(function: str, fallback: int) -> int:
        value = functions.get(function, {}).get("lambda_memory_size", fallback)
        return value if isinstance(value, int) and not isinstance(value, bool) else fallback

    return (
        memory("label_new_images", FALLBACK_LABEL_MEMORY_MB),
        memory("api_handler", FALLBACK_API_MEMORY_MB),
    )


# --- DynamoDB item sizes ---------------------------------------------------------------------


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
    from chalicelib.adapters.dynamodb import index_entries
    from chalicelib.items import to_item
    from chalicelib.models import ImageInfo, ImageRecord, Label, Status

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
            dynamodb_item_bytes(entry) for entry in index_entries(new.image_id, labels)
        ),
    )


def write_units(item_bytes: int) -> int:
    return math.ceil(item_bytes / KB)


def strong_read_units(item_bytes: int) -> int:
    return math.ceil(item_bytes / STRONG_READ_UNIT_BYTES)


# --- the model ---------------------------------------------------------------------------------


def cpu_share(memory_mb: float) -> float:
    """The share of one vCPU Lambda gives a function; a one-thread job gains nothing above 1."""
    return min(1.0, memory_mb / ONE_VCPU_MB)


def one_thread_ms(ms_at_one_vcpu: float, memory_mb: float) -> float:
    """Milliseconds of single-threaded work measured at one full vCPU, at `memory_mb`."""
    return ms_at_one_vcpu / cpu_share(memory_mb)


def gb_seconds(memory_mb: float, milliseconds: float) -> float:
    return memory_mb / 1024 * milliseconds / 1000


def requests_per_image(workload: Workload, batch_size: int, sizes: ItemSizes) -> RequestsPerImage:
    """What one image costs in requests, counted from the code (docs/COST.md)."""
    reads = workload.reads_per_image
    images_per_batch = batch_size / STREAM_RECORDS_PER_IMAGE
    label_invocations = STREAM_RECORDS_PER_IMAGE / batch_size
    write = (
        write_units(sizes.new_record)  # PutItem of the record
        + write_units(sizes.sha256_index_entry)  # its Sha256Index entry
        + 2 * write_units(max(sizes.new_record, sizes.classified_record))  # transactional update
        + 2 * LABELS_KEPT * write_units(sizes.label_index_entry)  # transactional puts
    )
    read = (
        EVENTUAL_READ_UNITS  # the Sha256Index Query of deduplication
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
        api_gateway=1 + reads,
        lambda_invocations=1 + label_invocations + reads,
        s3_puts=1,
        s3_gets=1,
        dynamodb_write_units=write,
        dynamodb_read_units=read,
        log_bytes=log_bytes,
    )


def lambda_gb_second_price(prices: Prices, architecture: str) -> float:
    if architecture == "arm64":
        return prices.lambda_gb_second_arm64.dollars
    return prices.lambda_gb_second_x86.dollars


def sagemaker_seconds_per_month(workload: Workload) -> float:
    return workload.images_per_month * workload.sagemaker_ms_per_image / 1000


def sagemaker_instances_needed(workload: Workload) -> int:
    """The endpoint's instances, or more if the month's images need more hours."""
    busy = math.ceil(sagemaker_seconds_per_month(workload) / (HOURS_PER_MONTH * 3600))
    return max(workload.sagemaker_instances, busy)


def sagemaker_utilisation(workload: Workload) -> float:
    """The share of those instances' hours spent labelling."""
    capacity = sagemaker_instances_needed(workload) * HOURS_PER_MONTH * 3600
    return sagemaker_seconds_per_month(workload) / capacity


def sagemaker_month(prices: Prices, instances: int) -> float:
    return instances * prices.sagemaker_ml_m5_large_hour.dollars * HOURS_PER_MONTH


def sagemaker_full_utilisation_per_image(prices: Prices, workload: Workload) -> float:
    return prices.sagemaker_ml_m5_large_hour.dollars * workload.sagemaker_ms_per_image / 3.6e6


def rekognition_per_image(prices: Prices) -> float:
    return prices.rekognition_detect_labels.dollars


Cost = tuple[str, float]  # what it is, dollars per 1,000 images

ONNX = "in-Lambda ONNX"
SAGEMAKER = "SageMaker ml.m5.large"
REKOGNITION = "Rekognition DetectLabels"


def lambda_per_1000(prices: Prices, workload: Workload, memory_mb: float, ms: float) -> float:
    """Dollars of Lambda duration for 1,000 images taking `ms` each at `memory_mb`."""
    price = lambda_gb_second_price(prices, workload.architecture)
    return 1000 * gb_seconds(memory_mb, ms) * price


def onnx_labelling_costs(prices: Prices, measured: Measured, workload: Workload) -> list[Cost]:
    """The labelling function's duration when it runs the model itself."""
    memory = workload.label_memory_mb
    label_ms = one_thread_ms(measured.labeller_ms_per_image_one_thread, memory)
    cold_ms = one_thread_ms(measured.cold_start_s * 1000, memory) / workload.images_per_cold_start
    io_ms = workload.label_io_ms_per_image
    return [
        (
            f"Lambda, labelling: {measured.labeller_ms_per_image_one_thread:.3g} ms/image on "
            f"1 vCPU, {label_ms:.1f} ms at {memory:,} MB (measured)",
            lambda_per_1000(prices, workload, memory, label_ms),
        ),
        (
            f"Lambda, labelling: waiting {io_ms:g} ms/image on S3 and DynamoDB (assumed)",
            lambda_per_1000(prices, workload, memory, io_ms),
        ),
        (
            f"Lambda, cold starts: {measured.cold_start_s:.3g} s per "
            f"{workload.images_per_cold_start:,} images",
            lambda_per_1000(prices, workload, memory, cold_ms),
        ),
    ]


def pipeline_costs(
    prices: Prices, measured: Measured, workload: Workload, counts: RequestsPerImage
) -> list[Cost]:
    """What an image costs besides labelling it, whichever model labels it."""
    api_mb = workload.api_memory_mb
    submit_ms = one_thread_ms(measured.submit_ms_p50, api_mb) + workload.submit_io_ms
    read_ms = workload.reads_per_image * workload.read_ms
    s3 = counts.s3_puts * prices.s3_put.dollars + counts.s3_gets * prices.s3_get.dollars
    logs = counts.log_bytes / GIB * prices.cloudwatch_logs_ingestion.dollars
    return [
        (
            f"Lambda, submit: {measured.submit_ms_p50:.3g} ms measured locally, "
            f"{submit_ms - workload.submit_io_ms:.0f} ms at {api_mb:,} MB, + "
            f"{workload.submit_io_ms:g} ms on S3 and DynamoDB (assumed)",
            lambda_per_1000(prices, workload, api_mb, submit_ms),
        ),
        (
            f"Lambda, result reads: {workload.reads_per_image} x {workload.read_ms:g} ms "
            f"at {api_mb:,} MB (assumed)",
            lambda_per_1000(prices, workload, api_mb, read_ms),
        ),
        (
            f"Lambda requests: {counts.lambda_invocations:g} per image",
            1000 * counts.lambda_invocations * prices.lambda_request.dollars,
        ),
        (
            f"API Gateway REST: {counts.api_gateway:g} requests per image",
            1000 * counts.api_gateway * prices.api_gateway_rest_request.dollars,
        ),
        (f"S3: {counts.s3_puts:g} PUT + {counts.s3_gets:g} GET per image", 1000 * s3),
        (
            f"DynamoDB writes: {counts.dynamodb_write_units:g} write units per image",
            1000 * counts.dynamodb_write_units * prices.dynamodb_write_unit.dollars,
        ),
        (
            f"DynamoDB reads: {counts.dynamodb_read_units:g} read units per image",
            1000 * counts.dynamodb_read_units * prices.dynamodb_read_unit.dollars,
        ),
        (f"CloudWatch Logs: {counts.log_bytes / KB:.1f} KB per image (estimated)", 1000 * logs),
    ]


def storage_per_1000(prices: Prices, workload: Workload, sizes: ItemSizes) -> float:
    """A month of keeping 1,000 images: the bytes in S3, the record and search items."""
    s3_gb = workload.stored_image_kb * KB / GIB
    dynamodb_gb = (sizes.classified_record + LABELS_KEPT * sizes.label_index_entry) / GIB
    return 1000 * (
        s3_gb * prices.s3_storage.dollars + dynamodb_gb * prices.dynamodb_storage.dollars
    )


def sagemaker_costs(prices: Prices, workload: Workload) -> list[Cost]:
    """What calling the endpoint adds per image, besides the endpoint's hours."""
    waiting_ms = workload.sagemaker_ms_per_image + workload.label_io_ms_per_image
    data_gb = workload.sagemaker_kb_per_image * KB / GIB
    return [
        (
            f"Lambda, labelling: waiting {waiting_ms:g} ms/image on the endpoint, S3 and "
            f"DynamoDB at {workload.label_memory_mb:,} MB",
            lambda_per_1000(prices, workload, workload.label_memory_mb, waiting_ms),
        ),
        (
            f"data processed in and out: {workload.sagemaker_kb_per_image:g} KB per image "
            "(assumed)",
            1000 * data_gb * prices.sagemaker_data_processed.dollars,
        ),
    ]


def cost_rows(
    prices: Prices, measured: Measured, workload: Workload, sizes: ItemSizes
) -> list[Row]:
    """The table: dollars per 1,000 images by item, a total per option, and each total's
    ratio to Rekognition DetectLabels."""
    images = workload.images_per_month
    rekognition = 1000 * rekognition_per_image(prices)
    counts = requests_per_image(workload, measured.label_batch_size, sizes)
    shared = pipeline_costs(prices, measured, workload, counts)

    def rows(option: str, costs: Sequence[Cost], monthly: bool = True) -> list[Row]:
        return [
            Row(option, item, dollars, dollars * images / 1000 if monthly else None)
            for item, dollars in costs
        ]

    def total(option: str, item: str, costs: Sequence[Cost], monthly: bool = True) -> Row:
        dollars = sum(cost for _, cost in costs)
        row = rows(option, [(item, dollars)], monthly)[0]
        return replace(row, ratio=dollars / rekognition, total=True)

    onnx = [*onnx_labelling_costs(prices, measured, workload), *shared]
    storage = (
        f"storage per month kept, not in the total: {workload.stored_image_kb:g} KB in S3, "
        "the DynamoDB items",
        storage_per_1000(prices, workload, sizes),
    )
    instances = sagemaker_instances_needed(workload)
    endpoint_month = sagemaker_month(prices, instances)
    at_volume = (
        f"endpoint at {images:,} images/month: {instances} instance(s), "
        f"{100 * sagemaker_utilisation(workload):.2g} % busy",
        1000 * endpoint_month / images,
    )
    capacity = HOURS_PER_MONTH * 3600 * 1000 / workload.sagemaker_ms_per_image
    at_full = (
        f"endpoint at full utilisation: {capacity / 1e6:.3g} million images/month per "
        f"instance at {workload.sagemaker_ms_per_image:g} ms (assumed)",
        1000 * sagemaker_full_utilisation_per_image(prices, workload),
    )
    rest = ("the rest of the pipeline, as in-Lambda ONNX", sum(cost for _, cost in shared))
    sagemaker = [*sagemaker_costs(prices, workload), rest]
    return [
        *rows(ONNX, onnx),
        total(ONNX, "total", onnx),
        *rows(ONNX, [storage]),
        replace(rows(SAGEMAKER, [at_volume])[0], per_month=endpoint_month),
        *rows(SAGEMAKER, sagemaker),
        total(SAGEMAKER, f"total at {images:,} images/month", [at_volume, *sagemaker]),
        *rows(SAGEMAKER, [at_full], monthly=False),
        total(SAGEMAKER, "total at full utilisation", [at_full, *sagemaker], monthly=False),
        total(
            REKOGNITION,
            "$1.00 per 1,000 images, the first million a month",
            [("DetectLabels", rekognition)],
        ),
    ]


def notes(prices: Prices, measured: Measured, workload: Workload) -> list[str]:
    lines = []
    idle = sagemaker_month(prices, workload.sagemaker_instances)
    break_even = idle / rekognition_per_image(prices)
    lines.append(
        f"The endpoint alone (${idle:,.2f} a month) costs what Rekognition charges for "
        f"{break_even:,.0f} images a month."
    )
    if measured.peak_rss_mb > workload.label_memory_mb:
        lines.append(
            f"WARNING: the labeller's peak memory ({measured.peak_rss_mb:.3g} MB) is over the "
            f"labelling function's {workload.label_memory_mb:,} MB."
        )
    else:
        lines.append(
            f"The labeller's peak memory ({measured.peak_rss_mb:.3g} MB) fits in the labelling "
            f"function's {workload.label_memory_mb:,} MB."
        )
    if workload.images_per_month > 1_000_000:
        lines.append(
            "Above a million images a month Rekognition's lower tiers apply; they are not "
            "modelled here."
        )
    if workload.architecture == "arm64":
        lines.append(
            "arm64: the measured time is x86_64's, and the package holds x86_64 wheels today."
        )
    return lines


# --- output ------------------------------------------------------------------------------------


def money(dollars: float | None) -> str:
    """Dollars to about three significant figures, without exponents."""
    if dollars is None:
        return "—"
    if dollars == 0:
        return "$0"
    decimals = max(2, 2 - math.floor(math.log10(abs(dollars))))
    return f"${dollars:,.{decimals}f}"


def ratio_text(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.3g}x"


def inputs_line(results: str, prices: Prices, measured: Measured, workload: Workload) -> str:
    return (
        f"Inputs: {results} ({measured.model}: {measured.labeller_ms_per_image_one_thread:.3g} ms "
        f"per image on one thread, stream batch {measured.label_batch_size}, cold start "
        f"{measured.cold_start_s:.3g} s, peak RSS {measured.peak_rss_mb:.3g} MB, submit "
        f"{measured.submit_ms_p50:.3g} ms); {prices.region} list prices; labelling function "
        f"{workload.label_memory_mb:,} MB and API function {workload.api_memory_mb:,} MB, "
        f"{workload.architecture}; {workload.images_per_month:,} images a month; one cold start "
        f"per {workload.images_per_cold_start:,} images; {workload.reads_per_image} result "
        f"read(s) per image; SageMaker {workload.sagemaker_ms_per_image:g} ms per image."
    )


TABLE_HEADER = ("option", "item", "$ per 1,000 images", "$ a month", "vs Rekognition")


def table_cells(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """The cells of each row; an option is named on its first row only."""
    options = [
        row.option if row.option != before.option else ""
        for before, row in zip([Row("", "", None), *rows], rows, strict=False)
    ]
    return [
        (option, row.item, money(row.per_1000), money(row.per_month), ratio_text(row.ratio))
        for option, row in zip(options, rows, strict=True)
    ]


def render_markdown(rows: Sequence[Row], inputs: str, note_lines: Sequence[str]) -> str:
    def bold(text: str, total: bool) -> str:
        return f"**{text}**" if total and text else text

    lines = [
        inputs,
        "",
        "| " + " | ".join(TABLE_HEADER) + " |",
        "|---|---|---:|---:|---:|",
    ]
    for row, cells in zip(rows, table_cells(rows), strict=True):
        shown = [cells[0], *(bold(cell, row.total) for cell in cells[1:])]
        lines.append("| " + " | ".join(shown) + " |")
    lines.append("")
    lines.extend(f"- {line}" for line in note_lines)
    return "\n".join(lines) + "\n"


def render_text(rows: Sequence[Row], inputs: str, note_lines: Sequence[str]) -> str:
    cells = [TABLE_HEADER, *table_cells(rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(TABLE_HEADER))]
    out = [inputs, ""]
    for line in cells:
        left = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        right = [cell.rjust(width) for cell, width in zip(line[2:], widths[2:], strict=True)]
        out.append("  ".join(left + right).rstrip())
    out.append("")
    out.extend(note_lines)
    return "\n".join(out) + "\n"


def render_price_table(prices: Prices) -> str:
    lines = ["| price | list price | unit used | source |", "|---|---|---|---|"]
    lines.extend(
        f"| {name} | {price.quoted} | {price.unit} | {price.source} |"
        for name, price in prices.listed()
    )
    return "\n".join(lines) + "\n"


def replace_between_markers(document: str, block: str) -> str:
    """The document with everything between the cost-table markers replaced by `block`."""
    start = document.find(MARKER_START)
    end = document.find(MARKER_END)
    if start < 0 or end < 0 or end < start:
        raise CostInputError(
            f"the document needs the lines {MARKER_START} and {MARKER_END}, in that order"
        )
    head = document[: start + len(MARKER_START)]
    return f"{head}\n{block.rstrip()}\n{document[end:]}"


# --- command line ------------------------------------------------------------------------------


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="make bench's JSON")
    parser.add_argument("--stage", default=DEFAULT_STAGE, help="whose memory sizes to read")
    parser.add_argument("--memory-mb", type=int, help="labelling function memory")
    parser.add_argument("--images-per-month", type=int, default=Workload.images_per_month)
    parser.add_argument("--images-per-cold-start", type=int, default=Workload.images_per_cold_start)
    parser.add_argument("--reads-per-image", type=int, default=Workload.reads_per_image)
    parser.add_argument(
        "--sagemaker-ms-per-image", type=float, default=Workload.sagemaker_ms_per_image
    )
    parser.add_argument("--architecture", choices=("x86_64", "arm64"), default="x86_64")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--write-doc", type=Path, help="put the markdown table in this doc")
    return parser.parse_args(list(argv))


def workload_from(arguments: argparse.Namespace) -> Workload:
    label_mb, api_mb = stage_memory(CHALICE_CONFIG, arguments.stage)
    workload = Workload(
        images_per_month=arguments.images_per_month,
        label_memory_mb=arguments.memory_mb or label_mb,
        api_memory_mb=api_mb,
        architecture=arguments.architecture,
        images_per_cold_start=arguments.images_per_cold_start,
        reads_per_image=arguments.reads_per_image,
        sagemaker_ms_per_image=arguments.sagemaker_ms_per_image,
    )
    positive = {
        "--memory-mb": workload.label_memory_mb,
        "--images-per-month": workload.images_per_month,
        "--images-per-cold-start": workload.images_per_cold_start,
        "--sagemaker-ms-per-image": workload.sagemaker_ms_per_image,
    }
    for option, value in positive.items():
        if value <= 0:
            raise CostInputError(f"{option} must be more than 0, not {value:g}")
    if workload.reads_per_image < 0:
        raise CostInputError("--reads-per-image must be at least 0")
    return workload


def shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def report(arguments: argparse.Namespace, markdown: bool) -> str:
    measured = load_measured(arguments.results)
    workload = workload_from(arguments)
    rows = cost_rows(US_WEST_2, measured, workload, representative_item_sizes())
    inputs = inputs_line(shown_path(arguments.results), US_WEST_2, measured, workload)
    render = render_markdown if markdown else render_text
    return render(rows, inputs, notes(US_WEST_2, measured, workload))


def main(argv: Sequence[str]) -> int:
    arguments = parse_arguments(argv)
    try:
        if arguments.write_doc is not None:
            table = report(arguments, markdown=True)
            document = arguments.write_doc.read_text()
            arguments.write_doc.write_text(replace_between_markers(document, table))
            print(f"wrote the cost table into {arguments.write_doc}")
        else:
            print(report(arguments, markdown=arguments.markdown), end="")
    except (CostInputError, OSError) as error:
        print(f"cost.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
