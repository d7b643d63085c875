"""Dollars per 1,000 images: Lambda GB-seconds, the SageMaker endpoint's hours, Rekognition's
price, and the rows of the table that compares them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tools.costs.inputs import Measured, Workload
from tools.costs.prices import Prices
from tools.costs.requests import KB, LABELS_KEPT, ItemSizes, RequestsPerImage, requests_per_image

# Lambda gives a function one full vCPU at 1,769 MB, and a share of one in proportion below.
ONE_VCPU_MB = 1769
HOURS_PER_MONTH = 730
GIB = 1024**3


@dataclass(frozen=True)
class Row:
    option: str
    item: str
    per_1000: float | None  # dollars per 1,000 images
    per_month: float | None = None  # dollars a month at the workload's volume
    ratio: float | None = None  # a total divided by Rekognition's
    total: bool = False


def cpu_share(memory_mb: float) -> float:
    """The share of one vCPU Lambda gives a function; a one-thread job gains nothing above 1."""
    return min(1.0, memory_mb / ONE_VCPU_MB)


def one_thread_ms(ms_at_one_vcpu: float, memory_mb: float) -> float:
    """Milliseconds of single-threaded work measured at one full vCPU, at `memory_mb`."""
    return ms_at_one_vcpu / cpu_share(memory_mb)


def gb_seconds(memory_mb: float, milliseconds: float) -> float:
    return memory_mb / 1024 * milliseconds / 1000


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
    dynamodb_gb = (
        sizes.classified_record + LABELS_KEPT * sizes.label_index_entry + sizes.digest_claim
    ) / GIB
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
