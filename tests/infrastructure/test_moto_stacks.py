"""The stacks created in moto's CloudFormation (in process), then used by the real adapters.

s3.yaml and dynamodb.yaml are created as one region would get them, and the app's own
S3ImageStore and DynamoDBLabelTable work on what they made; the table's stream shows the
writes. sagemaker.yaml is created too. alarms.yaml is not: moto's CloudFormation has no
AWS::CloudWatch::Alarm, and a GetAtt on one crashes create_stack (test_alarms.py reads it).

What moto ignores is pinned in test_moto_still_ignores_* at the end, and listed in
cloudformation/README.md ("What the tests cannot show").
"""

from __future__ import annotations

import ast
import re
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.adapters.dynamodb import DynamoDBLabelTable
from chalicelib.adapters.s3 import S3ImageStore
from chalicelib.domain.errors import StoredImageMissing
from chalicelib.domain.models import ImageInfo, ImageRecord, Label, Status
from tests.fixtures.aws import ACCOUNT, BUCKET, REGION, TABLE
from tests.infrastructure.templates import (
    CHALICE_DIR,
    TEMPLATE_DIR,
    Deployment,
    as_list,
    read_json,
)
from tests.support import TENANT

S3_STACK = "imagelabeller-s3"
DYNAMODB_STACK = "imagelabeller-dynamodb"
SAGEMAKER_STACK = "imagelabeller-sagemaker"
IMAGE = "763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-inference:2.8-cpu"
ARTIFACT_OBJECT = (
    "jumpstart-cache-prod-us-west-2/tensorflow-infer/"
    "infer-prepack-tensorflow-ic-imagenet-inception-v3-classification-4.tar.gz"
)
ENDPOINT = "jumpstart-inception-v3"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
UNSUPPORTED = re.compile(r"Tried to parse (\S+) but it's not supported by moto")


@dataclass(frozen=True)
class Created:
    """One stack moto created: its outputs, and the resource types it skipped."""

    outputs: dict[str, str]
    skipped: list[str]


def create_stack(name: str, template: str, parameters: dict[str, str] | None = None) -> Created:
    client = boto3.client("cloudformation", region_name=REGION)
    # moto warns once for each resource type it cannot create, and leaves it out.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.create_stack(
            StackName=name,
            TemplateBody=(TEMPLATE_DIR / template).read_text(encoding="utf-8"),
            Parameters=[
                {"ParameterKey": key, "ParameterValue": value}
                for key, value in (parameters or {}).items()
            ],
            Capabilities=["CAPABILITY_IAM"],
        )
    matches = [UNSUPPORTED.search(str(warning.message)) for warning in caught]
    others = [str(w.message) for w, m in zip(caught, matches, strict=True) if m is None]
    assert not others, f"unexpected warnings while creating {name}: {others}"
    [stack] = client.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return Created(
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        skipped=[m.group(1) for m in matches if m is not None],
    )


def list_exports() -> dict[str, str]:
    client = boto3.client("cloudformation", region_name=REGION)
    return {export["Name"]: export["Value"] for export in client.list_exports()["Exports"]}


@dataclass(frozen=True)
class Storage:
    s3: Created
    dynamodb: Created
    exports: dict[str, str]


@pytest.fixture
def storage(aws_environment: None) -> Iterator[Storage]:
    """s3.yaml and dynamodb.yaml created in moto, in us-west-2, account 123456789012."""
    with mock_aws():
        s3 = create_stack(S3_STACK, "s3.yaml")
        dynamodb = create_stack(DYNAMODB_STACK, "dynamodb.yaml")
        yield Storage(s3, dynamodb, list_exports())


@pytest.fixture
def sagemaker_stack(aws_environment: None) -> Iterator[Created]:
    with mock_aws():
        yield create_stack(
            SAGEMAKER_STACK,
            "sagemaker.yaml",
            {
                "ContainerImage": IMAGE,
                "ModelDataUrl": f"s3://{ARTIFACT_OBJECT}",
                "InstanceType": "ml.c5.xlarge",
                "InstanceCount": "2",
            },
        )


def new_record() -> ImageRecord:
    return ImageRecord(
        image_id=str(uuid.uuid4()),
        status=Status.NOT_CLASSIFIED,
        image=ImageInfo("JPEG", 640, 480, 12345, "ab" * 32),
        submitted_at=T0,
        source_url="https://example.com/a.jpg",
    )


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


# --- s3.yaml and dynamodb.yaml ---------------------------------------------------------------


def test_storage_stacks_export_the_agreed_names_with_the_real_values(storage: Storage) -> None:
    table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=TABLE)["Table"]
    sqs = boto3.client("sqs", region_name=REGION)
    assert storage.exports == {
        "imagelabeller-s3-BucketName": BUCKET,
        "imagelabeller-s3-BucketArn": f"arn:aws:s3:::{BUCKET}",
        "imagelabeller-s3-UploadQueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:imagelabeller-uploads",
        "imagelabeller-s3-CallbackQueueUrl": boto3.client("sqs", region_name=REGION).get_queue_url(
            QueueName="imagelabeller-callbacks"
        )["QueueUrl"],
        "imagelabeller-dynamodb-TableName": TABLE,
        "imagelabeller-dynamodb-TableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}",
        "imagelabeller-dynamodb-StreamArn": table["LatestStreamArn"],
        "imagelabeller-dynamodb-LabelIndexTableName": "ImageLabelIndex",
        "imagelabeller-dynamodb-LabelIndexTableArn": (
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ImageLabelIndex"
        ),
        "imagelabeller-dynamodb-LabellingFailedQueueArn": (
            f"arn:aws:sqs:{REGION}:{ACCOUNT}:imagelabeller-labelling-failed"
        ),
        "imagelabeller-dynamodb-LabellingFailedQueueUrl": sqs.get_queue_url(
            QueueName="imagelabeller-labelling-failed"
        )["QueueUrl"],
    }
    assert table["LatestStreamArn"].startswith(
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}/stream/"
    )


def test_app_stack_finds_the_bucket_and_stream_the_storage_stacks_made(storage: Storage) -> None:
    """The app stack computes the bucket name and imports the stream (merge-template.json)."""
    place = Deployment(region=REGION, account_id=ACCOUNT)
    merge = read_json(CHALICE_DIR / "merge-template.json")["Resources"]
    for function in ("APIHandler", "LabelNewImages"):
        variables = merge[function]["Properties"]["Environment"]["Variables"]
        assert place.resolve(variables["IMAGELABELLER_BUCKET"]) == BUCKET
        imported = variables["IMAGELABELLER_STREAM_ARN"]["Fn::ImportValue"]
        assert storage.exports[imported] == storage.dynamodb.outputs["StreamArn"]
    source = merge["LabelNewImages"]["Properties"]["Events"]
    stream = source["LabelNewImagesDynamodbEventSource"]["Properties"]["Stream"]
    assert stream["Fn::ImportValue"] in storage.exports
    # The stream mapping's on-failure destination is the storage stack's failure queue.
    failure = source["LabelNewImagesDynamodbEventSource"]["Properties"]["DestinationConfig"]
    queue_arn = storage.exports[failure["OnFailure"]["Destination"]["Fn::ImportValue"]]
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=storage.exports["imagelabeller-dynamodb-LabellingFailedQueueUrl"],
        AttributeNames=["QueueArn", "MessageRetentionPeriod"],
    )["Attributes"]
    assert (attributes["QueueArn"], attributes["MessageRetentionPeriod"]) == (queue_arn, "1209600")


def test_image_store_stores_reads_and_deletes_in_the_stacks_bucket(storage: Storage) -> None:
    client = boto3.client("s3", region_name=REGION)
    store = S3ImageStore(client, storage.exports["imagelabeller-s3-BucketName"])
    image_id, data = str(uuid.uuid4()), bytes(range(256)) * 64
    store.put(image_id, data, "image/png")
    assert store.get(image_id) == data
    assert client.head_object(Bucket=BUCKET, Key=image_id)["ServerSideEncryption"] == "AES256"
    store.delete(image_id)
    with pytest.raises(StoredImageMissing):
        store.get(image_id)


def test_label_table_works_on_the_stacks_table_and_its_stream_shows_the_writes(
    storage: Storage,
) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    table = DynamoDBLabelTable(
        client,
        storage.exports["imagelabeller-dynamodb-TableName"],
        storage.exports["imagelabeller-dynamodb-LabelIndexTableName"],
    )
    record = new_record()
    table.insert(record)
    assert table.complete(record.image_id, (Label("espresso", 0.95),), "model-a", T0, tenant=TENANT)
    stored = table.get(record.image_id)
    assert stored is not None and stored.status is Status.CLASSIFIED
    found = table.find_by_sha256(TENANT, record.image.sha256)
    assert found is not None and found.image_id == record.image_id
    hits, _ = table.images_with_label(TENANT, "espresso", 10, None)
    assert [hit.image_id for hit in hits] == [record.image_id]

    streams = boto3.client("dynamodbstreams", region_name=REGION)
    stream_arn = storage.exports["imagelabeller-dynamodb-StreamArn"]
    description = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
    assert description["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    [shard] = description["Shards"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
    insert, modify = (r["dynamodb"] for r in records)
    assert insert["Keys"] == {"Id": {"S": record.image_id}}
    assert insert["NewImage"]["Status"] == {"S": "NOT_CLASSIFIED"}
    assert modify["OldImage"]["Status"] == {"S": "NOT_CLASSIFIED"}
    assert modify["NewImage"]["Status"] == {"S": "CLASSIFIED"}


def test_table_is_on_demand_streamed_and_cannot_be_deleted(storage: Storage) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    table = client.describe_table(TableName=TABLE)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "Id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["Sha256Index"]
    assert table.get("LocalSecondaryIndexes", []) == []
    assert table["DeletionProtectionEnabled"] is True
    with pytest.raises(ClientError) as refused:
        client.delete_table(TableName=TABLE)
    assert error_code(refused) == "ValidationException"
    assert "DeletionProtectionEnabled" in str(refused.value)


def keep_on_delete_as_aws_does(*stack_names: str) -> None:
    """moto keeps a resource when its stack is deleted only for `DeletionPolicy: Retain`
    (moto/cloudformation/parsing.py). AWS keeps `RetainExceptOnCreate` ones as well, once
    the create that made them succeeded; tell moto so."""
    from moto.cloudformation.models import cloudformation_backends

    for stack in cloudformation_backends[ACCOUNT][REGION].stacks.values():
        if stack.name in stack_names:
            for resource in stack.resource_map._resource_json_map.values():
                if resource.get("DeletionPolicy") == "RetainExceptOnCreate":
                    resource["DeletionPolicy"] = "Retain"


def test_deleting_the_stacks_keeps_the_bucket_and_the_table(storage: Storage) -> None:
    client = boto3.client("cloudformation", region_name=REGION)
    S3ImageStore(boto3.client("s3", region_name=REGION), BUCKET).put("kept", b"x", "image/png")
    keep_on_delete_as_aws_does(S3_STACK, DYNAMODB_STACK)
    client.delete_stack(StackName=S3_STACK)
    client.delete_stack(StackName=DYNAMODB_STACK)
    assert list_exports() == {}
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_object(Bucket=BUCKET, Key="kept")["Body"].read() == b"x"
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    assert dynamodb.describe_table(TableName=TABLE)["Table"]["TableStatus"] == "ACTIVE"


# --- sagemaker.yaml --------------------------------------------------------------------------


def test_sagemaker_stack_creates_an_endpoint_serving_the_model(sagemaker_stack: Created) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    exports = list_exports()
    endpoint = client.describe_endpoint(
        EndpointName=exports["imagelabeller-sagemaker-EndpointName"]
    )
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointArn"] == exports["imagelabeller-sagemaker-EndpointArn"]
    config = client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    [variant] = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", 2)
    model = client.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{ARTIFACT_OBJECT}"
    role_arn = model["ExecutionRoleArn"]
    role = boto3.client("iam").get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]
    assert role["Arn"] == role_arn
    logs = boto3.client("logs", region_name=REGION)
    [group] = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/Endpoints/")["logGroups"]
    assert (group["logGroupName"], group["retentionInDays"]) == (
        f"/aws/sagemaker/Endpoints/{ENDPOINT}",
        30,
    )
    assert sagemaker_stack.skipped == []


def test_model_role_may_read_the_artifact_pull_the_image_and_write_its_logs_only(
    sagemaker_stack: Created,
) -> None:
    """moto resolves the template's Fn::Select/Fn::Split, so these are the real ARNs."""
    iam = boto3.client("iam")
    [role] = [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(SAGEMAKER_STACK)]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == []
    grants: set[tuple[str, str]] = set()
    for policy_name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy_name)[
            "PolicyDocument"
        ]
        if isinstance(document, str):  # moto keeps a CloudFormation inline policy as repr()
            document = ast.literal_eval(document)
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            grants |= {
                (action, resource)
                for action in as_list(statement["Action"])
                for resource in as_list(statement["Resource"])
            }
    repository = "arn:aws:ecr:us-west-2:763104351884:repository/tensorflow-inference"
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{ENDPOINT}"
    assert grants == {
        ("s3:GetObject", f"arn:aws:s3:::{ARTIFACT_OBJECT}"),
        ("ecr:BatchCheckLayerAvailability", repository),
        ("ecr:BatchGetImage", repository),
        ("ecr:GetDownloadUrlForLayer", repository),
        ("ecr:GetAuthorizationToken", "*"),
        ("logs:CreateLogStream", f"{log_group}:*"),
        ("logs:PutLogEvents", f"{log_group}:*"),
    }


# --- what moto does not do (cloudformation/README.md, "What the tests cannot show") ---------


def test_moto_still_ignores_the_buckets_policy_public_access_versioning_and_lifecycle(
    storage: Storage,
) -> None:
    """Pins moto 5.2's gaps. If this fails, moto learned one: check it above instead."""
    assert sorted(storage.s3.skipped) == ["AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"]
    assert storage.dynamodb.skipped == []
    s3 = boto3.client("s3", region_name=REGION)
    for call, code in [
        (s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration"),
        (s3.get_bucket_ownership_controls, "OwnershipControlsNotFoundError"),
        (s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration"),
        (s3.get_bucket_policy, "NoSuchBucketPolicy"),
    ]:
        with pytest.raises(ClientError) as missing:
            call(Bucket=BUCKET)
        assert error_code(missing) == code
    assert "Status" not in s3.get_bucket_versioning(Bucket=BUCKET)


def test_moto_still_ignores_the_tables_point_in_time_recovery_and_encryption(
    storage: Storage,
) -> None:
    """Pins moto 5.2's gaps. If this fails, moto learned one: check it above instead."""
    client = boto3.client("dynamodb", region_name=REGION)
    backups = client.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"
    # moto reads the API's SSESpecification.Enabled, not CloudFormation's SSEEnabled.
    assert "SSEDescription" not in client.describe_table(TableName=TABLE)["Table"]


def test_moto_still_ignores_the_endpoint_name(sagemaker_stack: Created) -> None:
    """moto names the endpoint <stack>-Endpoint-<random>, not EndpointName (its model has no
    name property for CloudFormation); test_templates.py checks the property instead."""
    name = sagemaker_stack.outputs["EndpointName"]
    assert name != ENDPOINT
    assert name.startswith(f"{SAGEMAKER_STACK}-Endpoint-")
