"""Whether a region offers every AWS service a stage uses, read offline from botocore's
bundled endpoint data (the same data boto3 builds its endpoints from). A region that lacks
one would fail partway through a deploy, or at run time; this says so before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

# What every deployed stage calls: the functions, the API, the table and its stream, the
# bucket, the queues, the webhook secret, the stacks, the alarms, their logs and topic.
SERVICES = (
    "lambda",
    "apigateway",
    "dynamodb",
    "dynamodbstreams",
    "s3",
    "sqs",
    "secretsmanager",
    "cloudformation",
    "cloudwatch",
    "logs",
    "sns",
)
# What a stage that labels with SageMaker adds: the endpoint stack and InvokeEndpoint.
SAGEMAKER_SERVICES = ("sagemaker", "sagemaker-runtime")

RegionsOf = Callable[[str], Collection[str]]


def services_used(uses_sagemaker: bool) -> tuple[str, ...]:
    return SERVICES + SAGEMAKER_SERVICES if uses_sagemaker else SERVICES


def botocore_regions(service: str) -> Collection[str]:
    """The regions botocore's endpoint data lists for `service`, in every partition."""
    import boto3

    session = boto3.session.Session()
    return {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions(service, partition_name=partition)
    }


def missing_services(
    region: str, services: Collection[str], regions_of: RegionsOf | None = None
) -> list[str]:
    """The services of `services` that `region` does not offer, in the given order
    (`regions_of`: where a service is offered; botocore's data by default)."""
    offered = regions_of or botocore_regions
    return [service for service in services if region not in offered(service)]
