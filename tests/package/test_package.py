"""`chalice package` for every deployed stage: the SAM template, its IAM, and the zip.

The session fixture packages each stage once (the dependency build is cached in
.chalice/deployments/, so only the first run in a checkout downloads wheels). Nothing here
talks to AWS: account-dependent values stay CloudFormation intrinsics in the template,
and the tests resolve them for a made-up deployment to compare exact ARNs.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib import config
from chalicelib.config import LAYER_MODELS_PACKAGE, PLACEHOLDER_STREAM_ARN, Limits, Settings
from chalicelib.http import responses
from tests.infrastructure.templates import Deployment, load_template
from tests.package.support import (
    API_FUNCTION,
    BUCKET_SCHEME,
    CFN_LINT,
    LAMBDA_GLIBC,
    LAMBDA_UNZIPPED_LIMIT,
    MERGE_TEMPLATE,
    SAGEMAKER_ENDPOINT,
    STAGES,
    STREAM_EVENT,
    STREAM_EXPORT,
    STREAM_FUNCTION,
    SUMMARY,
    TABLE,
    Packaged,
    Stage,
    as_list,
    base_python,
    chalice_deployments_lock,
    chalice_package,
    configured_stage_names,
    elf_header,
    iam_resource_types,
    manylinux_glibc,
    policy_statements,
    wheel_tags,
)
from tests.support import photo_png
from tools.deploy.model_layer import build_model_layer
from tools.deploy.package_models import (
    ModelInPackage,
    check_package,
    packaged_models,
    unix_mode,
)
from tools.deploy.settings import CHALICE_CONFIG, StageRefused, load_stage, read_json

# Packaging downloads Lambda wheels from PyPI the first time in a checkout.
pytestmark = pytest.mark.timeout(900)

# The account id AWS's own documentation uses in examples; only used to resolve templates.
EXAMPLE_ACCOUNT_ID = "111122223333"
API_GATEWAY_TIMEOUT_SECONDS = 29
API_SIZING = (1024, 25)  # MemorySize MB, Timeout s
STREAM_SIZING = {"onnx": (4096, 120), "sagemaker": (2048, 900)}
STREAM_BATCH_SIZE = 16
STREAM_PARALLELIZATION_FACTOR = 4
UPLOAD_FUNCTION = "RegisterUploads"
CALLBACK_FUNCTION = "DeliverCallbacks"
WEBHOOK_SECRET_EXPORT = "imagelabeller-secrets-WebhookSecretArn"
UPLOAD_QUEUE = "imagelabeller-uploads"
CALLBACK_QUEUE = "imagelabeller-callbacks"
CALLBACK_QUEUE_EXPORT = "imagelabeller-s3-CallbackQueueUrl"
FUNCTION_NAMES = {
    API_FUNCTION: "api_handler",
    STREAM_FUNCTION: "label_new_images",
    UPLOAD_FUNCTION: "register_uploads",
    CALLBACK_FUNCTION: "deliver_callbacks",
}
ROLES = {
    API_FUNCTION: "ApiHandlerRole",
    STREAM_FUNCTION: "LabelNewImagesRole",
    UPLOAD_FUNCTION: "RegisterUploadsRole",
    CALLBACK_FUNCTION: "DeliverCallbacksRole",
}
LOG_GROUPS = {
    API_FUNCTION: "ApiHandlerLogGroup",
    STREAM_FUNCTION: "LabelNewImagesLogGroup",
    UPLOAD_FUNCTION: "RegisterUploadsLogGroup",
    CALLBACK_FUNCTION: "DeliverCallbacksLogGroup",
}
CLASS_NAMES_IN_ZIP = "chalicelib/data/imagenet_classes.json"
NATIVE_DISTRIBUTIONS = {"numpy": "numpy", "pillow": "PIL"}  # onnxruntime: the layer's
# Lambda's limit for a zip uploaded directly, as `chalice deploy` does, is 50 MiB: a margin.
DIRECT_UPLOAD_BUDGET = 45 * 2**20

by_stage = pytest.mark.parametrize("stage", STAGES, ids=str)


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Packaged]:
    out_dir = tmp_path_factory.mktemp("chalice-package")
    # One stage after another: the first builds the cached zip that the others reuse.
    with chalice_deployments_lock():
        return {stage.name: chalice_package(stage, out_dir) for stage in STAGES}


@pytest.fixture(scope="session")
def unzipped(packages: dict[str, Packaged], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `test` stage's deployment.zip unpacked, as Lambda unpacks it into /var/task."""
    task = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(packages[STAGES[0].name].zip_path) as archive:
        archive.extractall(task)
    return task


@pytest.fixture(scope="session")
def unzipped_layer(packages: dict[str, Packaged], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `test` stage's model layer unpacked, as Lambda unpacks it into /opt."""
    opt = tmp_path_factory.mktemp("opt")
    with zipfile.ZipFile(packages[STAGES[0].name].layer_path) as archive:
        archive.extractall(opt)
    return opt


def deployment(stage: Stage) -> Deployment:
    return Deployment(
        region=stage.region,
        account_id=EXAMPLE_ACCOUNT_ID,
        stack_name=f"imagelabeller-{stage.name}",
        exports={STREAM_EXPORT: stream_arn(stage), WEBHOOK_SECRET_EXPORT: webhook_secret(stage)},
    )


def webhook_secret(stage: Stage) -> str:
    """The secret's ARN, with the random suffix Secrets Manager gives every secret."""
    return (
        f"arn:aws:secretsmanager:{stage.region}:{EXAMPLE_ACCOUNT_ID}"
        ":secret:imagelabeller-webhook-secret-AbCdEf"
    )


def stream_arn(stage: Stage) -> str:
    return (
        f"arn:aws:dynamodb:{stage.region}:{EXAMPLE_ACCOUNT_ID}:table/{TABLE}"
        "/stream/2026-11-26T05:00:00.000"
    )


def expected_grants(stage: Stage) -> dict[str, set[tuple[str, str]]]:
    """(action, resource) pairs each role must be allowed, and nothing more."""
    region, account = stage.region, EXAMPLE_ACCOUNT_ID
    bucket = f"arn:aws:s3:::open-devops-images-{region}-{account}"
    table = f"arn:aws:dynamodb:{region}:{account}:table/{TABLE}"

    def logs(function: str) -> str:
        stack = deployment(stage).stack_name
        # The API's function is named as `chalice deploy` names it: the app stack's name.
        name = stack if function == "api_handler" else f"{stack}-{function}"
        return f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{name}:*"

    search = f"arn:aws:dynamodb:{region}:{account}:table/ImageLabelIndex"
    api = {
        ("s3:PutObject", f"{bucket}/*"),
        ("s3:DeleteObject", f"{bucket}/*"),
        ("dynamodb:PutItem", table),
        ("dynamodb:GetItem", table),
        ("dynamodb:DeleteItem", table),
        ("dynamodb:Query", f"{table}/index/Sha256Index"),
        ("dynamodb:Query", search),
        ("dynamodb:DeleteItem", search),
        # A resubmit checks the stored image against its digest; ListBucket tells a
        # missing one (404) from a denied one (403).
        ("s3:GetObject", f"{bucket}/*"),
        ("s3:ListBucket", bucket),
        # The claim on a submitted image's bytes (chalicelib/adapters/dynamodb.py).
        ("dynamodb:PutItem", search),
        ("dynamodb:GetItem", search),
        # Each key's request rate and daily images: only RATE# and IMAGES# items.
        ("dynamodb:UpdateItem", search),
        ("logs:CreateLogStream", logs("api_handler")),
        ("logs:PutLogEvents", logs("api_handler")),
    }
    labeller = {
        ("s3:GetObject", f"{bucket}/*"),
        # Without it S3 answers 403 instead of 404 for a missing image.
        ("s3:ListBucket", bucket),
        ("dynamodb:GetItem", table),
        ("dynamodb:UpdateItem", table),
        ("dynamodb:PutItem", search),
        ("dynamodb:DescribeStream", stream_arn(stage)),
        ("dynamodb:GetRecords", stream_arn(stage)),
        ("dynamodb:GetShardIterator", stream_arn(stage)),
        ("dynamodb:ListStreams", "*"),
        ("sqs:SendMessage", f"arn:aws:sqs:{region}:{account}:{CALLBACK_QUEUE}"),
        # The stream mapping's on-failure destination: Lambda sends with this role.
        ("sqs:SendMessage", f"arn:aws:sqs:{region}:{account}:imagelabeller-labelling-failed"),
        ("logs:CreateLogStream", logs("label_new_images")),
        ("logs:PutLogEvents", logs("label_new_images")),
    }
    if stage.labeller == "sagemaker":
        endpoint = f"arn:aws:sagemaker:{region}:{account}:endpoint/{SAGEMAKER_ENDPOINT}"
        labeller.add(("sagemaker:InvokeEndpoint", endpoint))
    queue = f"arn:aws:sqs:{region}:{account}:{UPLOAD_QUEUE}"
    uploads = {
        ("s3:GetObject", f"{bucket}/uploads/*"),
        ("s3:DeleteObject", f"{bucket}/uploads/*"),
        ("s3:ListBucket", bucket),
        # Stored only where nothing is (If-None-Match), then compared with what is there.
        ("s3:GetObject", f"{bucket}/*"),
        ("s3:PutObject", f"{bucket}/*"),
        ("s3:DeleteObject", f"{bucket}/*"),
        ("dynamodb:GetItem", table),
        ("dynamodb:PutItem", table),
        ("sqs:ReceiveMessage", queue),
        ("sqs:DeleteMessage", queue),
        ("sqs:GetQueueAttributes", queue),
        ("logs:CreateLogStream", logs("register_uploads")),
        ("logs:PutLogEvents", logs("register_uploads")),
    }
    callback_queue = f"arn:aws:sqs:{region}:{account}:{CALLBACK_QUEUE}"
    callbacks = {
        ("dynamodb:GetItem", table),
        ("dynamodb:UpdateItem", table),
        ("sqs:ReceiveMessage", callback_queue),
        ("sqs:DeleteMessage", callback_queue),
        ("sqs:GetQueueAttributes", callback_queue),
        # The webhook secret, read at run time: that one secret, nothing else.
        ("secretsmanager:GetSecretValue", webhook_secret(stage)),
        ("logs:CreateLogStream", logs("deliver_callbacks")),
        ("logs:PutLogEvents", logs("deliver_callbacks")),
    }
    return {
        ROLES[API_FUNCTION]: api,
        ROLES[STREAM_FUNCTION]: labeller,
        ROLES[UPLOAD_FUNCTION]: uploads,
        ROLES[CALLBACK_FUNCTION]: callbacks,
    }


def expected_environment(stage: Stage) -> dict[str, Any]:
    return {
        "IMAGELABELLER_BACKEND": "aws",
        "IMAGELABELLER_LABELLER": stage.labeller,
        "IMAGELABELLER_AWS_REGION": stage.region,
        "IMAGELABELLER_TABLE": TABLE,
        "IMAGELABELLER_LABEL_INDEX_TABLE": "ImageLabelIndex",
        "IMAGELABELLER_BUCKET": {"Fn::Sub": BUCKET_SCHEME},
        "IMAGELABELLER_STREAM_ARN": {"Fn::ImportValue": STREAM_EXPORT},
        "IMAGELABELLER_SAGEMAKER_ENDPOINT": SAGEMAKER_ENDPOINT,
        "IMAGELABELLER_ALLOW_PRIVATE_URLS": "false",
        # The limits, written out per stage (docs/SECURITY.md).
        "IMAGELABELLER_MAX_IMAGE_BYTES": "10485760",
        "IMAGELABELLER_MAX_IMAGE_PIXELS": "50000000",
        "IMAGELABELLER_FETCH_CONNECT_TIMEOUT": "3",
        "IMAGELABELLER_FETCH_TOTAL_TIMEOUT": "15",
        "IMAGELABELLER_FETCH_MAX_REDIRECTS": "3",
        # The original's keyless routes: open (as the legacy tenant) on test only.
        "IMAGELABELLER_LEGACY_ROUTES_OPEN": "true" if stage.name == "test" else "false",
    }


def iam_roles(packaged: Packaged) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in packaged.template["Resources"].items()
        if resource["Type"].startswith("AWS::IAM::")
    }


# --- the stages -------------------------------------------------------------------------


def test_every_deployed_stage_in_the_config_is_checked_here() -> None:
    deployed = [name for name in configured_stage_names() if not name.startswith("local")]
    assert sorted(deployed) == sorted(stage.name for stage in STAGES)


def test_cfn_lint_accepts_every_generated_template(packages: dict[str, Packaged]) -> None:
    templates = [str(packaged.template_path) for packaged in packages.values()]
    result = subprocess.run(
        [str(CFN_LINT), *templates], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"cfn-lint:\n{result.stdout}\n{result.stderr}"


# --- the template -----------------------------------------------------------------------


@by_stage
def test_rest_api_sends_every_route_to_the_api_handler(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    packaged = packages[stage.name]
    api = packaged.resource("RestAPI")
    assert api["Type"] == "AWS::Serverless::Api"
    assert api["Properties"]["StageName"] == "api"
    swagger = api["Properties"]["DefinitionBody"]
    paths = swagger["paths"]
    assert {"/images", "/images/{image_id}", "/submit-image", "/get-image-label"} <= set(paths)
    handler_arn = "${APIHandler.Arn}"
    for path, operations in paths.items():
        for method, operation in operations.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            assert handler_arn in uri, f"{method.upper()} {path} goes to {uri}"
    assert {"image/jpeg", "image/png"} <= set(swagger["x-amazon-apigateway-binary-media-types"])
    assert packaged.resource(API_FUNCTION)["Properties"]["Handler"] == "app.app"


@by_stage
def test_api_gateway_answers_its_own_errors_in_our_error_shape(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    """A path no route takes (MISSING_AUTHENTICATION_TOKEN) is our 404; every other error
    API Gateway answers itself (throttling, a body over its limit, a Lambda that failed)
    keeps its status and gets our body. SAM writes the API's GatewayResponses into its
    OpenAPI body, so each deployment of the API carries them."""
    gateway = packages[stage.name].resource("RestAPI")["Properties"]["GatewayResponses"]
    assert set(gateway) == {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"}
    for response in gateway.values():
        assert response["ResponseParameters"] == {"Headers": {"Content-Type": "'application/json'"}}
    missing = gateway["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["StatusCode"] == "404"
    assert json.loads(missing["ResponseTemplates"]["application/json"]) == responses.error_body(
        "not_found", "no such route"
    )
    for response_type, code in (
        ("DEFAULT_4XX", "invalid_request"),
        ("DEFAULT_5XX", "internal_error"),
    ):
        assert "StatusCode" not in gateway[response_type], response_type
        template = gateway[response_type]["ResponseTemplates"]["application/json"]
        # API Gateway substitutes the message as a JSON string, quotes included.
        body = template.replace("$context.error.messageString", json.dumps('Too "Many" Requests'))
        assert json.loads(body) == responses.error_body(code, 'Too "Many" Requests'), response_type
        assert code in {*responses.STATUS_BY_CODE, *responses.CHALICE_CODES.values()}


@by_stage
def test_label_new_images_reads_the_exported_table_stream_from_its_start(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    packaged = packages[stage.name]
    function = packaged.resource(STREAM_FUNCTION)["Properties"]
    assert function["Handler"] == "app.label_new_images"
    assert list(function["Events"]) == [STREAM_EVENT]
    event = function["Events"][STREAM_EVENT]
    assert event["Type"] == "DynamoDB"
    # Chalice's own settings, merged with the failure handling of merge-template.json
    # (tests/infrastructure/test_stream_mapping.py checks those values).
    merged = read_json(MERGE_TEMPLATE)["Resources"][STREAM_FUNCTION]
    failure_handling = merged["Properties"]["Events"][STREAM_EVENT]["Properties"]
    assert event["Properties"] == {
        **failure_handling,
        "Stream": {"Fn::ImportValue": STREAM_EXPORT},
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": STREAM_BATCH_SIZE,
        "MaximumBatchingWindowInSeconds": 0,
    }
    handled = {"FilterCriteria", "DestinationConfig", "MaximumRetryAttempts"}
    assert handled <= set(event["Properties"])
    # Up to 4 batches of a shard at once (docs/PERFORMANCE.md, "Past one machine"): SAM
    # passes it to the AWS::Lambda::EventSourceMapping it makes.
    assert event["Properties"]["ParallelizationFactor"] == STREAM_PARALLELIZATION_FACTOR
    assert "Events" not in packaged.resource(API_FUNCTION)["Properties"]


@by_stage
def test_every_function_gets_the_stage_settings(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    packaged = packages[stage.name]
    for function in FUNCTION_NAMES:
        variables = packaged.resource(function)["Properties"]["Environment"]["Variables"]
        expected = expected_environment(stage)
        if function == STREAM_FUNCTION:
            # The labeller queues callbacks; the queue is the storage stack's.
            expected["IMAGELABELLER_CALLBACK_QUEUE_URL"] = {
                "Fn::ImportValue": CALLBACK_QUEUE_EXPORT
            }
        if function == CALLBACK_FUNCTION:
            # Only the function that delivers webhooks learns where their secret is (its ARN,
            # not its value: the function reads it from Secrets Manager at run time).
            expected["IMAGELABELLER_WEBHOOK_SECRET_ARN"] = {
                "Fn::ImportValue": WEBHOOK_SECRET_EXPORT
            }
        assert variables == expected, function

    # What the app reads from them once CloudFormation has resolved them.
    resolved = deployment(stage).resolve(expected_environment(stage))
    settings = Settings.from_environ(resolved)
    assert (settings.backend, settings.labeller, settings.allow_private_urls) == (
        "aws",
        stage.labeller,
        False,
    )
    assert settings.aws.region == stage.region
    assert settings.aws.bucket == f"open-devops-images-{stage.region}-{EXAMPLE_ACCOUNT_ID}"
    assert (settings.aws.table, settings.aws.sagemaker_endpoint) == (TABLE, SAGEMAKER_ENDPOINT)
    assert config.stream_arn(resolved) == stream_arn(stage)
    assert settings.limits == Limits()  # the stated limits are the documented defaults


@by_stage
def test_functions_run_python_3_12_with_their_memory_and_timeouts(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    packaged = packages[stage.name]
    sizing = {
        API_FUNCTION: API_SIZING,
        STREAM_FUNCTION: STREAM_SIZING[stage.labeller],
        UPLOAD_FUNCTION: (1024, 60),
        CALLBACK_FUNCTION: (256, 30),
    }
    for function, (memory, timeout) in sizing.items():
        properties = packaged.resource(function)["Properties"]
        assert properties["Runtime"] == "python3.12", function
        assert properties["Architectures"] == ["x86_64"], function
        assert (properties["MemorySize"], properties["Timeout"]) == (memory, timeout), function
    # A URL fetch may take its whole limit and still answer before API Gateway gives up.
    assert Limits().fetch_total_timeout < API_SIZING[1] < API_GATEWAY_TIMEOUT_SECONDS


@by_stage
def test_each_function_logs_to_its_own_log_group_with_retention(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    packaged = packages[stage.name]
    for function, name in FUNCTION_NAMES.items():
        resource = packaged.resource(function)
        # The API's function is named as `chalice deploy` names it: `<app>-<stage>`.
        full_name = "${AWS::StackName}" + ("" if function == API_FUNCTION else f"-{name}")
        assert resource["Properties"]["FunctionName"] == {"Fn::Sub": full_name}
        log_group = packaged.resource(LOG_GROUPS[function])
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        assert log_group["Properties"] == {
            "LogGroupName": {"Fn::Sub": f"/aws/lambda/{full_name}"},
            "RetentionInDays": stage.log_retention_days,
        }
        # The group exists before the function can run (and write to it).
        assert resource["DependsOn"] == [LOG_GROUPS[function]]


@by_stage
def test_register_uploads_reads_the_buckets_upload_queue(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    [event] = packages[stage.name].resource(UPLOAD_FUNCTION)["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    queue_arn = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + UPLOAD_QUEUE
    assert event["Properties"]["Queue"] == {"Fn::Sub": queue_arn}


@by_stage
def test_deliver_callbacks_reads_the_callback_queue_one_message_at_a_time(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    function = packages[stage.name].resource(CALLBACK_FUNCTION)["Properties"]
    [event] = function["Events"].values()
    assert event["Type"] == "SQS"
    queue_arn = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + CALLBACK_QUEUE
    assert event["Properties"]["Queue"] == {"Fn::Sub": queue_arn}
    assert event["Properties"]["BatchSize"] == 1  # a slow receiver holds up no other callback
    # SQS hides a message for six times the function's timeout (cloudformation/s3.yaml).
    queue = load_template("s3.yaml")["Resources"]["CallbackQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]


@by_stage
def test_template_holds_no_account_id(stage: Stage, packages: dict[str, Packaged]) -> None:
    text = packages[stage.name].template_path.read_text(encoding="utf-8")
    assert PLACEHOLDER_STREAM_ARN not in text
    assert re.findall(r"(?<!\d)\d{12}(?!\d)", text) == []


# --- IAM --------------------------------------------------------------------------------


@by_stage
def test_each_function_has_its_own_role_and_nothing_else_grants_permissions(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    packaged = packages[stage.name]
    roles = iam_roles(packaged)
    assert sorted(roles) == sorted(ROLES.values())
    for function, role_name in ROLES.items():
        properties = packaged.resource(function)["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [role_name, "Arn"]}
        assert "Policies" not in properties, "SAM policy templates would add permissions"
        role = roles[role_name]
        assert role["Type"] == "AWS::IAM::Role"
        assert set(role["Properties"]) == {"AssumeRolePolicyDocument", "Policies"}
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert (trust["Effect"], trust["Action"]) == ("Allow", "sts:AssumeRole")


@by_stage
def test_roles_are_allowed_exactly_this_stages_resources(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    packaged = packages[stage.name]
    where = deployment(stage)
    granted: dict[str, set[tuple[str, str]]] = {}
    search = f"arn:aws:dynamodb:{stage.region}:{EXAMPLE_ACCOUNT_ID}:table/ImageLabelIndex"
    for name, role in iam_roles(packaged).items():
        pairs = granted.setdefault(name, set())
        for statement in policy_statements(role):
            assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
            resources = as_list(where.resolve(statement["Resource"]))
            if "Condition" in statement:
                # Only the API key items' and the quota items' conditions (policy-*.json).
                assert resources == [search], statement
                assert statement["Condition"] in (
                    {"ForAnyValue:StringEquals": {"dynamodb:LeadingKeys": ["APIKEY"]}},
                    {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RATE#*", "IMAGES#*"]}},
                ), statement
            if statement["Effect"] == "Deny":
                assert statement["Sid"] == "NeverWriteApiKeys", statement
                continue
            assert statement["Effect"] == "Allow"
            pairs.update(
                (action, resource)
                for action in as_list(statement["Action"])
                for resource in resources
            )
    assert granted == expected_grants(stage)


@by_stage
def test_star_resources_only_for_actions_iam_cannot_scope(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    for role_name, role in iam_roles(packages[stage.name]).items():
        for statement in policy_statements(role):
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{role_name}: wildcard action {action}"
                resource_types = iam_resource_types(action)
                assert resource_types is not None, f"{role_name}: IAM has no action {action}"
                if "*" in as_list(statement["Resource"]):
                    assert resource_types == (), (
                        f"{role_name}: {action} applies to {resource_types}; name them"
                    )


# --- the deployment package -------------------------------------------------------------


def test_stages_with_the_same_model_ship_the_same_deployment_package(
    packages: dict[str, Packaged],
) -> None:
    digests: dict[str, set[str]] = {}
    for packaged in packages.values():
        digest = hashlib.sha256(packaged.zip_path.read_bytes()).hexdigest()
        digests.setdefault(packaged.stage.model, set()).add(digest)
    assert all(len(found) == 1 for found in digests.values()), digests


@by_stage
def test_deploy_packages_the_model_the_stage_chooses(stage: Stage) -> None:
    assert load_stage(stage.name).model == stage.model


def test_a_stage_choosing_lite2_packages_lite2_and_an_unknown_model_is_refused() -> None:
    config = copy.deepcopy(read_json(CHALICE_CONFIG))
    variables = config["stages"]["test"]["environment_variables"]
    variables["IMAGELABELLER_MODEL"] = "efficientnet-lite2"
    assert load_stage("test", config).model == "efficientnet-lite2"
    variables["IMAGELABELLER_MODEL"] = "efficientnet-lite9"
    with pytest.raises(StageRefused, match="IMAGELABELLER_MODEL"):
        load_stage("test", config)


def test_a_package_with_a_model_left_in_chalicelib_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "deployment.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", "")
        archive.writestr("chalicelib/models/efficientnet-lite0.onnx", b"model")
    before = package.read_bytes()
    with pytest.raises(ModelInPackage, match="chalicelib/models/efficientnet-lite0"):
        check_package(package)
    assert package.read_bytes() == before


def test_packaging_makes_a_file_written_0600_readable_by_lambda(tmp_path: Path) -> None:
    package = tmp_path / "deployment.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr(zipfile.ZipInfo("app.py"), "")
        private = zipfile.ZipInfo("chalicelib/data/imagenet_classes.json")
        private.external_attr = 0o100600 << 16
        archive.writestr(private, b"[]")
        tool = zipfile.ZipInfo("bin/tool")
        tool.external_attr = 0o100700 << 16
        archive.writestr(tool, b"#!")
    check_package(package)
    with zipfile.ZipFile(package) as archive:
        modes = {entry.filename: unix_mode(entry) for entry in archive.infolist()}
    assert modes == {
        "app.py": 0o644,  # zipfile's 0600 for a ZipInfo of its own
        "chalicelib/data/imagenet_classes.json": 0o100644,
        "bin/tool": 0o100755,
    }


@by_stage
def test_every_file_of_the_package_is_readable_by_all(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    """Lambda runs the code as a user that owns none of it (a 0600 model never loads)."""
    with zipfile.ZipFile(packages[stage.name].zip_path) as archive:
        private = [
            entry.filename
            for entry in archive.infolist()
            if unix_mode(entry) and unix_mode(entry) & 0o444 != 0o444
        ]
    assert private == []


@by_stage
def test_package_holds_no_model_but_the_class_names(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    with zipfile.ZipFile(packages[stage.name].zip_path) as archive:
        assert packaged_models(archive) == []
        assert not any(name.startswith("onnxruntime") for name in archive.namelist())
        class_names = json.loads(archive.read(CLASS_NAMES_IN_ZIP))
    assert len(class_names) == 1000
    assert class_names[967] == "espresso"


@by_stage
def test_model_layer_holds_onnxruntime_and_only_the_stages_model(
    stage: Stage, packages: dict[str, Packaged]
) -> None:
    with zipfile.ZipFile(packages[stage.name].layer_path) as archive:
        names = archive.namelist()
        model = f"python/{LAYER_MODELS_PACKAGE}/{stage.model}.onnx"
        ours = f"python/{LAYER_MODELS_PACKAGE}/"
        assert [name for name in names if name.startswith(ours) and name.endswith(".onnx")] == [
            model
        ]
        assert archive.read(model) == config.model_file(stage.model).read_bytes()
        assert f"python/{LAYER_MODELS_PACKAGE}/__init__.py" in names
        assert "python/onnxruntime/__init__.py" in names
        assert all(name.startswith("python/") for name in names)
        tags = wheel_tags(archive, "python/onnxruntime")
    for tag in tags:
        python, abi, platform = tag.split("-")
        assert (python, abi) == ("cp312", "cp312"), tag
        glibc = manylinux_glibc(platform)
        assert glibc is not None and glibc <= LAMBDA_GLIBC, tag


def test_native_dependencies_are_built_for_lambda_python_3_12_on_x86_64(
    packages: dict[str, Packaged],
) -> None:
    with zipfile.ZipFile(packages[STAGES[0].name].zip_path) as archive:
        names = archive.namelist()
        for distribution, package in NATIVE_DISTRIBUTIONS.items():
            tags = wheel_tags(archive, distribution)
            assert tags, distribution
            for tag in tags:
                python, abi, platform = tag.split("-")
                assert (python, abi) == ("cp312", "cp312"), tag
                glibc = manylinux_glibc(platform)
                assert glibc is not None and glibc <= LAMBDA_GLIBC, tag
            extensions = [n for n in names if n.startswith(f"{package}/") and n.endswith(".so")]
            assert any(n.endswith(".cpython-312-x86_64-linux-gnu.so") for n in extensions), package
        shared_objects = [n for n in names if re.search(r"\.so(\.[\d.]+)?$", n)]
        for name in shared_objects:
            assert elf_header(archive, name) == (b"\x7fELF", 2, 62), f"{name} is not x86-64 ELF"
            assert not re.search(r"\.cpython-3(?!12-)\d+", name), f"{name} is for another Python"
        foreign = [n for n in names if n.endswith((".pyd", ".dylib", ".dll"))]
        assert foreign == []


def unzipped_size(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as archive:
        return sum(info.file_size for info in archive.infolist())


def test_package_fits_chalice_deploys_direct_upload_and_with_the_layer_lambdas_limit(
    packages: dict[str, Packaged],
) -> None:
    """`chalice deploy` uploads the zip in the CreateFunction call: at most 50 MiB. Lambda
    counts the function and its layers together against 250 MiB unzipped."""
    packaged = packages[STAGES[0].name]
    zipped = packaged.zip_path.stat().st_size
    unzipped = unzipped_size(packaged.zip_path)
    layer_zipped = packaged.layer_path.stat().st_size
    layer_unzipped = unzipped_size(packaged.layer_path)
    figures = (
        f"deployment.zip: {zipped / 1e6:.1f} MB zipped ({zipped / 2**20:.1f} MiB), "
        f"{unzipped / 1e6:.1f} MB unzipped; model-layer.zip ({STAGES[0].model}): "
        f"{layer_zipped / 1e6:.1f} MB zipped, {layer_unzipped / 1e6:.1f} MB unzipped; "
        f"together {(unzipped + layer_unzipped) / 2**20:.0f} MiB unzipped of Lambda's "
        f"{LAMBDA_UNZIPPED_LIMIT / 2**20:.0f} MiB"
    )
    print(figures)
    SUMMARY.append(figures)
    assert zipped < DIRECT_UPLOAD_BUDGET
    assert unzipped + layer_unzipped < LAMBDA_UNZIPPED_LIMIT


def test_package_leaves_out_boto3_and_what_only_development_needs(
    packages: dict[str, Packaged],
) -> None:
    with zipfile.ZipFile(packages[STAGES[0].name].zip_path) as archive:
        top_level = {name.split("/", 1)[0] for name in archive.namelist()}
    # boto3 comes with the Lambda runtime; the rest are ours for development only.
    unwanted = {
        "boto3",
        "botocore",
        "tests",
        "scripts",
        "tools",
        ".chalice",
        "moto",
        "torch",
    }
    assert top_level & unwanted == set()


# --- the packaged code, run -------------------------------------------------------------

LABEL_SCRIPT = """
import json, sys
from pathlib import Path

task = Path(sys.argv[1]).resolve()
# As on Lambda: the function's code first, then the layer's python/ folder (/opt/python).
sys.path[:0] = [str(task), str(Path(sys.argv[3]).resolve() / "python")]

from chalicelib.adapters.onnx import OnnxLabeller, model_spec
from chalicelib.config import Settings

settings = Settings.from_environ()
labeller = OnnxLabeller(
    model_spec(settings.model), settings.model_path, settings.limits.max_image_pixels
)
(outcome,) = labeller.label([Path(sys.argv[2]).read_bytes()], 5)
files = {name: getattr(module, "__file__", None) or "" for name, module in sys.modules.items()}
print(json.dumps({
    "python": list(sys.version_info[:2]),
    "model_path": str(settings.model_path),
    "model_id": labeller.model_id,
    "error": outcome.error,
    "labels": [label.name for label in outcome.labels],
    "modules": {name: files[name] for name in ("chalicelib", "numpy", "onnxruntime", "PIL")},
    "from_site_packages": sorted(name for name, path in files.items() if "site-packages" in path),
    "aws_sdk_imported": sorted(name for name in ("boto3", "botocore") if name in sys.modules),
}))
"""


def run_bare_python(
    script: str, *args: str, cwd: Path, environment: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run `script` in the base Python 3.12, isolated (-I) and without site-packages (-S).

    Its environment is a PATH, LANG and `environment`, as Lambda sets a stage's variables.
    """
    result = subprocess.run(
        [str(base_python()), "-I", "-S", "-c", script, *args],
        cwd=cwd,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            **(environment or {}),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"the packaged code failed:\n{result.stdout}\n{result.stderr}"
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_packaged_code_finds_the_model_in_the_layer_and_labels_a_real_photo(
    unzipped: Path, unzipped_layer: Path, tmp_path: Path
) -> None:
    photo = tmp_path / "coffee.png"
    photo.write_bytes(photo_png("coffee"))

    answer = run_bare_python(
        LABEL_SCRIPT, str(unzipped), str(photo), str(unzipped_layer), cwd=tmp_path
    )

    assert answer["python"] == [3, 12]
    layer_models = unzipped_layer / "python" / LAYER_MODELS_PACKAGE
    assert answer["model_path"] == str(layer_models / "efficientnet-lite0.onnx")
    assert answer["model_id"] == "efficientnet-lite0/onnx"
    for module, path in answer["modules"].items():
        where = unzipped_layer if module == "onnxruntime" else unzipped
        assert Path(path).is_relative_to(where), f"{module} came from {path}"
    assert answer["from_site_packages"] == []
    assert answer["aws_sdk_imported"] == [], "the ONNX path should not need the AWS SDK"
    assert answer["error"] is None
    assert answer["labels"][0] == "espresso", answer["labels"]


def test_a_stage_choosing_lite2_gets_a_layer_with_it_alone_and_labels_with_it(
    unzipped: Path, tmp_path: Path
) -> None:
    layer_zip = build_model_layer(tmp_path / "model-layer.zip", "efficientnet-lite2")
    opt = tmp_path / "opt"
    with zipfile.ZipFile(layer_zip) as archive:
        ours = f"python/{LAYER_MODELS_PACKAGE}/"
        assert [n for n in archive.namelist() if n.startswith(ours) and n.endswith(".onnx")] == [
            f"{ours}efficientnet-lite2.onnx"
        ]
        archive.extractall(opt)
    photo = tmp_path / "coffee.png"
    photo.write_bytes(photo_png("coffee"))

    answer = run_bare_python(
        LABEL_SCRIPT,
        str(unzipped),
        str(photo),
        str(opt),
        cwd=tmp_path,
        environment={"IMAGELABELLER_MODEL": "efficientnet-lite2"},
    )

    assert answer["model_path"] == str(
        opt / "python" / LAYER_MODELS_PACKAGE / "efficientnet-lite2.onnx"
    )
    assert answer["model_id"] == "efficientnet-lite2/onnx"
    assert answer["error"] is None
    assert answer["labels"][0] == "espresso", answer["labels"]
    size = layer_zip.stat().st_size
    SUMMARY.append(f"model-layer.zip with efficientnet-lite2: {size / 1e6:.1f} MB zipped")


# What the python3.12 Lambda runtime adds to the function's code: the AWS SDK.
LAMBDA_RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six")

IMPORT_APP_SCRIPT = """
import importlib, json, pkgutil, sys, sysconfig

task, runtime = sys.argv[1:3]
sys.path[:0] = [task, runtime]

import app
import chalicelib

names = ["app"] + [m.name for m in pkgutil.walk_packages(chalicelib.__path__, "chalicelib.")]
for name in names:
    importlib.import_module(name)
known = (task, runtime, sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"))
files = {name: getattr(module, "__file__", None) or "" for name, module in sys.modules.items()}
print(json.dumps({
    "imported": names,
    "elsewhere": sorted(f"{n} {p}" for n, p in files.items() if p and not p.startswith(known)),
}))
"""


def lambda_runtime_folder(folder: Path) -> Path:
    """A folder holding (links to) the AWS SDK, as the Lambda runtime puts it on sys.path."""
    folder.mkdir()
    for name in LAMBDA_RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if spec.submodule_search_locations else origin
        (folder / source.name).symlink_to(source)
    return folder


def test_whole_packaged_app_imports_with_only_what_lambda_adds(
    unzipped: Path, tmp_path: Path
) -> None:
    runtime = lambda_runtime_folder(tmp_path / "lambda-runtime")

    answer = run_bare_python(IMPORT_APP_SCRIPT, str(unzipped), str(runtime), cwd=tmp_path)

    assert {"app", "chalicelib.bootstrap", "chalicelib.adapters.onnx"} <= set(answer["imported"])
    assert answer["elsewhere"] == []
