"""The four stacks in cloudformation/, read as CloudFormation reads them.

cfn-lint checks the schema. These tests check what we mean to deploy, above all what
moto's CloudFormation ignores (public-access blocks, versioning, lifecycle, the bucket
policy, point-in-time recovery, table encryption) and what the app relies on: the
bucket name, the table, the stream export, the endpoint name.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.infrastructure.templates import (
    CFN_LINT,
    CHALICE_DIR,
    PROJECT_DIR,
    TEMPLATE_DIR,
    TEMPLATES,
    Deployment,
    as_list,
    exports,
    imported_names,
    load_template,
    one_resource_of_type,
    read_json,
    resources_of_type,
)
from tests.package.support import iam_resource_types

BUCKET_NAME = {"Fn::Sub": "open-devops-images-${AWS::Region}-${AWS::AccountId}"}
TABLE = "ImageLabels"
ENDPOINT = "jumpstart-inception-v3"

# The export names the app stack and the deploy script were told; nothing more.
EXPECTED_EXPORTS = {
    "s3.yaml": {
        "imagelabeller-s3-BucketName",
        "imagelabeller-s3-BucketArn",
        "imagelabeller-s3-UploadQueueArn",
        "imagelabeller-s3-CallbackQueueUrl",
    },
    "dynamodb.yaml": {
        "imagelabeller-dynamodb-TableName",
        "imagelabeller-dynamodb-TableArn",
        "imagelabeller-dynamodb-StreamArn",
        "imagelabeller-dynamodb-LabelIndexTableName",
        "imagelabeller-dynamodb-LabelIndexTableArn",
        "imagelabeller-dynamodb-LabellingFailedQueueArn",
        "imagelabeller-dynamodb-LabellingFailedQueueUrl",
    },
    "secrets.yaml": {"imagelabeller-secrets-WebhookSecretArn"},
    "sagemaker.yaml": {
        "imagelabeller-sagemaker-EndpointName",
        "imagelabeller-sagemaker-EndpointArn",
    },
    "alarms.yaml": {"imagelabeller-alarms-TopicArn"},
}
# Parameter -> default (None: required). The deploy script passes these names.
EXPECTED_PARAMETERS: dict[str, dict[str, Any]] = {
    "s3.yaml": {},
    "dynamodb.yaml": {"DeletionProtection": "true"},
    "secrets.yaml": {},
    "sagemaker.yaml": {
        "ContainerImage": None,
        "ModelDataUrl": None,
        "InstanceType": "ml.m5.large",
        "InstanceCount": 1,
        "EndpointName": ENDPOINT,
    },
    "alarms.yaml": {
        "AppStackName": None,
        "EndpointName": "",
        "AlarmEmail": "",
        "FailedImagesPercentThreshold": 5,
        "MetricMathAlarms": "true",
    },
}
# What sagemaker.image_uris / model_uris give for the JumpStart model in us-west-2.
EXAMPLE_IMAGE = "763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-inference:2.8-cpu"
EXAMPLE_ARTIFACT = (
    "s3://jumpstart-cache-prod-us-west-2/tensorflow-infer/"
    "infer-prepack-tensorflow-ic-imagenet-inception-v3-classification-4.tar.gz"
)

by_template = pytest.mark.parametrize("name", TEMPLATES)


def deployed_stages() -> dict[str, dict[str, Any]]:
    """The stages of .chalice/config.json that deploy functions (not the local ones)."""
    stages: dict[str, dict[str, Any]] = read_json(CHALICE_DIR / "config.json")["stages"]
    deployed = {name: stage for name, stage in stages.items() if "lambda_functions" in stage}
    assert deployed, "no deployed stage in .chalice/config.json"
    return deployed


def bucket() -> dict[str, Any]:
    return one_resource_of_type(load_template("s3.yaml"), "AWS::S3::Bucket")


def table() -> dict[str, Any]:
    return dict(load_template("dynamodb.yaml")["Resources"]["LabelTable"])


def label_index_table() -> dict[str, Any]:
    return dict(load_template("dynamodb.yaml")["Resources"]["LabelIndexTable"])


# --- every template ------------------------------------------------------------------------


@pytest.mark.slow  # runs cfn-lint as a process: 4 s of CPU
def test_cfn_lint_accepts_every_template_with_no_rule_ignored() -> None:
    paths = sorted(
        path for path in TEMPLATE_DIR.iterdir() if path.suffix in (".yaml", ".yml", ".json")
    )
    assert {path.name for path in paths} >= set(TEMPLATES)
    result = subprocess.run(
        [str(CFN_LINT), *map(str, paths)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"cfn-lint:\n{result.stdout}\n{result.stderr}"


@by_template
def test_template_says_what_it_is(name: str) -> None:
    template = load_template(name)
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert "ImageLabeller" in template["Description"]


@by_template
def test_template_exports_exactly_the_agreed_names(name: str) -> None:
    assert set(exports(load_template(name))) == EXPECTED_EXPORTS[name]


@by_template
def test_template_takes_exactly_the_agreed_parameters(name: str) -> None:
    parameters = load_template(name).get("Parameters", {})
    assert {key: value.get("Default") for key, value in parameters.items()} == (
        EXPECTED_PARAMETERS[name]
    )


def test_every_name_the_app_imports_is_exported_by_a_stack() -> None:
    imported: set[str] = set()
    for path in [CHALICE_DIR / "merge-template.json", *CHALICE_DIR.glob("policy-*.json")]:
        imported |= imported_names(read_json(path))
    # docs/AWS.md names the exports the app relies on, in prose and tables.
    documented = set(
        re.findall(
            r"imagelabeller-(?:s3|dynamodb|secrets|sagemaker|alarms)-[A-Za-z]+",
            (PROJECT_DIR / "docs" / "AWS.md").read_text(encoding="utf-8"),
        )
    )
    assert "imagelabeller-dynamodb-StreamArn" in imported
    exported = {name for names in EXPECTED_EXPORTS.values() for name in names}
    assert imported | documented <= exported
    for name in imported | documented:
        [owner] = [file for file, names in EXPECTED_EXPORTS.items() if name in names]
        assert name in exports(load_template(owner))


def test_stream_export_is_the_tables_stream_arn() -> None:
    stream = exports(load_template("dynamodb.yaml"))["imagelabeller-dynamodb-StreamArn"]
    tables = resources_of_type(load_template("dynamodb.yaml"), "AWS::DynamoDB::Table")
    assert sorted(tables) == ["LabelIndexTable", "LabelTable"]
    assert stream == {"Fn::GetAtt": ["LabelTable", "StreamArn"]}


# --- s3.yaml ---------------------------------------------------------------------------------


def test_bucket_name_is_the_one_the_app_and_its_policies_compute() -> None:
    assert bucket()["Properties"]["BucketName"] == BUCKET_NAME
    place = Deployment()
    name = place.resolve(BUCKET_NAME)
    assert name == "open-devops-images-us-west-2-111122223333"
    merge = read_json(CHALICE_DIR / "merge-template.json")["Resources"]
    for function in ("APIHandler", "LabelNewImages", "RegisterUploads"):
        variables = merge[function]["Properties"]["Environment"]["Variables"]
        assert place.resolve(variables["IMAGELABELLER_BUCKET"]) == name
    for path in CHALICE_DIR.glob("policy-*.json"):
        for statement in read_json(path)["Statement"]:
            for resource in as_list(statement["Resource"]):
                arn = place.resolve(resource) if "Fn::ImportValue" not in resource else ""
                if arn.startswith("arn:aws:s3:::"):
                    allowed = (f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*")
                    assert arn in (*allowed, f"arn:aws:s3:::{name}/uploads/*"), path


def test_bucket_is_encrypted_with_s3_managed_keys() -> None:
    rules = bucket()["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules == [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]


def test_bucket_blocks_all_public_access_and_acls() -> None:
    properties = bucket()["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert "AccessControl" not in properties


def test_bucket_policy_denies_every_request_without_tls() -> None:
    template = load_template("s3.yaml")
    [bucket_id] = resources_of_type(template, "AWS::S3::Bucket")
    policy = one_resource_of_type(template, "AWS::S3::BucketPolicy")["Properties"]
    assert policy["Bucket"] == {"Ref": bucket_id}
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert sorted(map(str, as_list(statement["Resource"]))) == sorted(
        map(str, [{"Fn::GetAtt": [bucket_id, "Arn"]}, {"Fn::Sub": f"${{{bucket_id}.Arn}}/*"}])
    )
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bucket_keeps_deleted_images_30_days_and_cleans_up_after_itself() -> None:
    properties = bucket()["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = properties["LifecycleConfiguration"]["Rules"]
    assert all(rule["Status"] == "Enabled" for rule in rules)
    merged = {key: value for rule in rules for key, value in rule.items()}
    assert merged["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert merged["ExpiredObjectDeleteMarker"] is True
    assert merged["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    # No rule may expire current images, only direct uploads that were never registered.
    expiring = [rule for rule in rules if "ExpirationInDays" in rule or "ExpirationDate" in rule]
    assert expiring == [
        {
            "Id": "ExpireUnregisteredUploadsAfter7Days",
            "Status": "Enabled",
            "Prefix": "uploads/",
            "ExpirationInDays": 7,
        }
    ]


def test_bucket_tells_the_upload_queue_about_direct_uploads_only() -> None:
    template = load_template("s3.yaml")
    notification = bucket()["Properties"]["NotificationConfiguration"]
    assert notification == {
        "QueueConfigurations": [
            {
                "Event": "s3:ObjectCreated:*",
                "Queue": {"Fn::GetAtt": ["UploadQueue", "Arn"]},
                "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "uploads/"}]}},
            }
        ]
    }
    queue = template["Resources"]["UploadQueue"]["Properties"]
    assert queue["QueueName"] == "imagelabeller-uploads"  # app.py subscribes by this name
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    [statement] = template["Resources"]["UploadQueuePolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert "aws:SourceArn" in statement["Condition"]["ArnLike"]


@pytest.mark.parametrize(
    "resource", [bucket, table, label_index_table], ids=["bucket", "table", "label-index"]
)
def test_user_data_outlives_its_stack(resource: Any) -> None:
    found = resource()
    # RetainExceptOnCreate: kept, except by the rollback of the create that made it (still
    # empty then), so that a failed first deploy can simply be run again.
    assert (found["DeletionPolicy"], found["UpdateReplacePolicy"]) == (
        "RetainExceptOnCreate",
        "Retain",
    )


# --- dynamodb.yaml ---------------------------------------------------------------------------


def test_table_is_the_storage_contracts_imagelabels_table() -> None:
    properties = table()["Properties"]
    assert properties["TableName"] == TABLE
    assert properties["KeySchema"] == [{"AttributeName": "Id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [
        {"AttributeName": "Id", "AttributeType": "S"},
        {"AttributeName": "Sha256", "AttributeType": "S"},
    ]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in properties
    # Deduplication queries this index (chalicelib/adapters/dynamodb.py); it needs keys only.
    assert properties["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "Sha256Index",
            "KeySchema": [{"AttributeName": "Sha256", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]
    assert "LocalSecondaryIndexes" not in properties


def test_search_table_is_queried_by_label_best_score_first() -> None:
    properties = label_index_table()["Properties"]
    assert properties["TableName"] == "ImageLabelIndex"
    assert properties["KeySchema"] == [
        {"AttributeName": "LabelKey", "KeyType": "HASH"},
        {"AttributeName": "Rank", "KeyType": "RANGE"},
    ]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    # On, except in a first create (the deploy's update then switches it on).
    assert properties["DeletionProtectionEnabled"] == {"Fn::If": ["Protected", True, False]}


def test_table_streams_new_and_old_images() -> None:
    assert table()["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_table_has_point_in_time_recovery_encryption_and_deletion_protection() -> None:
    properties = table()["Properties"]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # No key id: the AWS-managed aws/dynamodb key, which needs no grant in the app's roles.
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    # On, except in a first create (the deploy's update then switches it on).
    assert properties["DeletionProtectionEnabled"] == {"Fn::If": ["Protected", True, False]}


def test_table_names_are_the_ones_every_deployed_stage_uses() -> None:
    for stage, settings in deployed_stages().items():
        variables = settings["environment_variables"]
        assert variables["IMAGELABELLER_TABLE"] == TABLE, stage
        assert variables["IMAGELABELLER_LABEL_INDEX_TABLE"] == "ImageLabelIndex", stage
    place = Deployment()
    allowed = (f":table/{TABLE}", f":table/{TABLE}/index/Sha256Index", ":table/ImageLabelIndex")
    for path in CHALICE_DIR.glob("policy-*.json"):
        for statement in read_json(path)["Statement"]:
            for resource in as_list(statement["Resource"]):
                arn = place.resolve(resource) if "Fn::ImportValue" not in resource else ""
                if ":dynamodb:" in arn:
                    assert arn.endswith(allowed), (path, arn)


# --- secrets.yaml ----------------------------------------------------------------------------


def test_the_webhook_secret_is_generated_by_its_stack_and_outlives_it() -> None:
    template = load_template("secrets.yaml")
    secret = one_resource_of_type(template, "AWS::SecretsManager::Secret")
    properties = secret["Properties"]
    # The name docs/DEPLOY.md and receivers' operators use; the value nobody typed.
    assert properties["Name"] == "imagelabeller-webhook-secret"
    assert "SecretString" not in properties
    assert properties["GenerateSecretString"]["PasswordLength"] >= 32
    assert (secret["DeletionPolicy"], secret["UpdateReplacePolicy"]) == (
        "RetainExceptOnCreate",
        "Retain",
    )
    [(logical_id, _)] = resources_of_type(template, "AWS::SecretsManager::Secret").items()
    arn = {"Fn::GetAtt": [logical_id, "Id"]}  # the secret's ARN
    assert exports(template) == {"imagelabeller-secrets-WebhookSecretArn": arn}


def test_only_the_callback_function_may_read_the_webhook_secret_and_only_that_one() -> None:
    arn = {"Fn::ImportValue": "imagelabeller-secrets-WebhookSecretArn"}
    readers = {}
    for path in sorted(CHALICE_DIR.glob("policy-*.json")):
        for statement in read_json(path)["Statement"]:
            if any(action.startswith("secretsmanager:") for action in statement["Action"]):
                readers[path.name] = (statement["Action"], statement["Resource"])
    assert readers == {"policy-callbacks.json": (["secretsmanager:GetSecretValue"], arn)}
    variables = read_json(CHALICE_DIR / "merge-template.json")["Resources"]
    with_secret = {
        name: resource["Properties"]["Environment"]["Variables"]
        for name, resource in variables.items()
        if "IMAGELABELLER_WEBHOOK_SECRET_ARN"
        in resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
    }
    assert with_secret.keys() == {"DeliverCallbacks"}
    assert with_secret["DeliverCallbacks"]["IMAGELABELLER_WEBHOOK_SECRET_ARN"] == arn
    # The value itself is in no function's environment.
    assert "IMAGELABELLER_WEBHOOK_SECRET" not in json.dumps(variables).replace("_SECRET_ARN", "")
    assert "resolve:secretsmanager" not in json.dumps(variables)


def test_no_function_may_write_api_keys_and_the_api_updates_only_quota_items() -> None:
    """Keys are the operator's to write (`imagelabeller keys`); a function that could write
    them could mint itself access. The API function updates the index table only to count
    requests and images per key."""
    index = ":table/ImageLabelIndex"
    place = Deployment()
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    for path in sorted(CHALICE_DIR.glob("policy-*.json")):
        statements = read_json(path)["Statement"]
        writing = [
            s
            for s in statements
            if s["Effect"] == "Allow"
            and writes & set(as_list(s["Action"]))
            and any(place.resolve(r).endswith(index) for r in as_list(s["Resource"]))
        ]
        if not writing:
            continue
        denies = [
            s
            for s in statements
            if s["Effect"] == "Deny"
            and writes <= set(as_list(s["Action"]))
            and s["Condition"] == {"ForAnyValue:StringEquals": {"dynamodb:LeadingKeys": ["APIKEY"]}}
        ]
        assert denies, f"{path.name} may write ImageLabelIndex but has no Deny on APIKEY items"
    api = read_json(CHALICE_DIR / "policy-api.json")["Statement"]
    [update] = [s for s in api if s["Effect"] == "Allow" and "dynamodb:UpdateItem" in s["Action"]]
    assert update["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RATE#*", "IMAGES#*"]}
    }


# --- sagemaker.yaml --------------------------------------------------------------------------


def test_endpoint_is_named_as_the_app_and_its_policy_expect() -> None:
    template = load_template("sagemaker.yaml")
    endpoint = one_resource_of_type(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointName"] == {"Ref": "EndpointName"}
    assert template["Parameters"]["EndpointName"]["Default"] == ENDPOINT
    for stage, settings in deployed_stages().items():
        variables = settings["environment_variables"]
        assert variables["IMAGELABELLER_SAGEMAKER_ENDPOINT"] == ENDPOINT, stage
    policy = read_json(CHALICE_DIR / "policy-labeller-sagemaker.json")
    [invoke] = [
        s for s in policy["Statement"] if "sagemaker:InvokeEndpoint" in as_list(s["Action"])
    ]
    assert Deployment().resolve(invoke["Resource"]).endswith(f":endpoint/{ENDPOINT}")


def test_endpoint_serves_the_model_from_the_parameters_on_variant_all_traffic() -> None:
    template = load_template("sagemaker.yaml")
    [model_id] = resources_of_type(template, "AWS::SageMaker::Model")
    [config_id] = resources_of_type(template, "AWS::SageMaker::EndpointConfig")
    [role_id] = resources_of_type(template, "AWS::IAM::Role")
    model = template["Resources"][model_id]["Properties"]
    assert model["ExecutionRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert model["PrimaryContainer"]["Image"] == {"Ref": "ContainerImage"}
    assert model["PrimaryContainer"]["ModelDataUrl"] == {"Ref": "ModelDataUrl"}
    [variant] = template["Resources"][config_id]["Properties"]["ProductionVariants"]
    assert variant == {
        "VariantName": "AllTraffic",
        "ModelName": {"Fn::GetAtt": [model_id, "ModelName"]},
        "InstanceType": {"Ref": "InstanceType"},
        "InitialInstanceCount": {"Ref": "InstanceCount"},
        "InitialVariantWeight": 1,
    }
    endpoint = one_resource_of_type(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    outputs = {output["Export"]["Name"]: output["Value"] for output in template["Outputs"].values()}
    [endpoint_id] = resources_of_type(template, "AWS::SageMaker::Endpoint")
    assert outputs["imagelabeller-sagemaker-EndpointArn"] == {"Ref": endpoint_id}
    assert outputs["imagelabeller-sagemaker-EndpointName"] == {
        "Fn::GetAtt": [endpoint_id, "EndpointName"]
    }


def test_model_role_is_for_sagemaker_only_and_grants_nothing_broad() -> None:
    role = one_resource_of_type(load_template("sagemaker.yaml"), "AWS::IAM::Role")["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert "ManagedPolicyArns" not in role
    assert "RoleName" not in role  # CAPABILITY_IAM is enough, no CAPABILITY_NAMED_IAM
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert "*" not in action, statement
            types = iam_resource_types(action)
            assert types is not None, f"IAM has no action {action}"
            if statement["Resource"] == "*":
                assert types == (), f"{action} can be scoped to {types}, not *"
    # The exact resources are checked on moto, which resolves Fn::Select and Fn::Split
    # (tests/infrastructure/test_moto_stacks.py).


@pytest.mark.parametrize(
    ("parameter", "value", "accepted"),
    [
        ("ContainerImage", EXAMPLE_IMAGE, True),
        (
            "ContainerImage",
            "763104351884.dkr.ecr.us-east-2.amazonaws.com/tensorflow-inference:2.8.0-cpu-py39",
            True,
        ),
        # A digest or a nested repository would break the repository the role is scoped to.
        ("ContainerImage", "763104351884.dkr.ecr.us-west-2.amazonaws.com/tf@sha256:ab12", False),
        ("ContainerImage", "763104351884.dkr.ecr.us-west-2.amazonaws.com/a/b:1", False),
        ("ContainerImage", "tensorflow/serving:latest", False),
        ("ModelDataUrl", EXAMPLE_ARTIFACT, True),
        ("ModelDataUrl", "s3://jumpstart-cache-prod-us-west-2/tensorflow-infer/", False),
        ("ModelDataUrl", "https://example.com/model.tar.gz", False),
        ("EndpointName", ENDPOINT, True),
        ("EndpointName", "bad_name", False),
    ],
)
def test_sagemaker_parameters_accept_only_what_the_role_can_be_scoped_to(
    parameter: str, value: str, accepted: bool
) -> None:
    pattern = load_template("sagemaker.yaml")["Parameters"][parameter]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


def test_the_rest_api_declares_the_apps_binary_media_types_for_cloudformation() -> None:
    """Chalice writes them only into the swagger; the RestApi resource's own property (with
    CloudFormation's `~1` for `/`) is what emulators read, and SAM keeps both in step."""
    from app import app

    merge = read_json(CHALICE_DIR / "merge-template.json")["Resources"]
    declared = merge["RestAPI"]["Properties"]["BinaryMediaTypes"]
    assert [media.replace("~1", "/") for media in declared] == app.api.binary_types


def test_deletion_protection_is_off_only_when_the_deploy_asks_for_a_first_create() -> None:
    template = load_template("dynamodb.yaml")
    assert template["Parameters"]["DeletionProtection"]["Default"] == "true"
    assert template["Conditions"]["Protected"] == {
        "Fn::Equals": [{"Ref": "DeletionProtection"}, "true"]
    }
