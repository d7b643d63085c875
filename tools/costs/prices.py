"""On-demand list prices, each with the unit the formulas use and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, fields

REMEMBERED = "list price as remembered, not checked online"


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
