"""The deployer policy (docs/deployer-policy.json) allows what a deploy needs.

Two kinds of calls need it:

- the calls scripts/deploy makes itself: tools/deploy/calls.py records them (botocore's
  before-parameter-build event on RunContext's session) and tools/deploy/policy_check.py
  checks the record against the policy. Here: synthetic records, the calls the plan
  describes for every stage, and a real run against moto_server;
- the calls CloudFormation makes with the deployer's credentials to create, update and
  delete our resources: tools/deploy/resource_actions.json lists them per resource type,
  taken from the resource-provider schemas cfn-lint ships, and every type our templates
  use must be there, with every action allowed.
"""

from __future__ import annotations

import importlib
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from tests.delivery.support import MOTO_ACCOUNT, PROJECT_DIR, MotoServer, run_deploy
from tests.infrastructure.templates import TEMPLATE_DIR, Deployment, load_template
from tools.deploy import calls, policy_check
from tools.deploy.actions import RunContext, describe_all
from tools.deploy.artifacts import upload_package
from tools.deploy.plan import build_plan, preflight
from tools.deploy.settings import deployed_stage_names, load_stage

POLICY_PATH = PROJECT_DIR / "docs" / "deployer-policy.json"
RESOURCE_ACTIONS = PROJECT_DIR / "tools" / "deploy" / "resource_actions.json"
MERGE_TEMPLATE = PROJECT_DIR / ".chalice" / "merge-template.json"
STAGES = PROJECT_DIR / "tools" / "deploy" / "stages.json"
# The stacks whose template the deploy builds itself: (module, function returning the body).
INLINE_TEMPLATES = {
    "artifacts": ("tools.deploy.artifacts", "artifacts_template_body"),
    "layer": ("tools.deploy.model_layer", "layer_template_body"),
}
# The resource types `chalice package` writes into sam.json for our app (before the merge
# template adds its own): see out/<stage>/sam.json after a deploy, or tests/package.
CHALICE_PACKAGE_TYPES = {
    "AWS::Serverless::Function",
    "AWS::Serverless::Api",
    "AWS::IAM::Role",
    "AWS::Logs::LogGroup",
    "AWS::Lambda::Permission",
}
OPERATIONS = ("create", "update", "delete", "read")
# IAM's managed-policy limit, in characters without whitespace.
MANAGED_POLICY_LIMIT = 6144
ACCOUNT = "111122223333"
SAM_TRANSFORM = "arn:aws:cloudformation:us-west-1:aws:transform/Serverless-2016-10-31"


def policy() -> list[policy_check.Statement]:
    return policy_check.load_policy(POLICY_PATH)


def write_log(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def call(action: str, resource: str | None = None, region: str = "us-west-1") -> dict[str, Any]:
    return {"action": action, "operation": "-", "region": region, "resource": resource}


# --- the recorder ------------------------------------------------------------------------


@cache
def signing_name(service: str) -> str:
    return str(botocore.session.get_session().get_service_model(service).signing_name)


@pytest.mark.parametrize(
    "service, operation, action",
    [
        ("cloudformation", "CreateStack", "cloudformation:CreateStack"),
        ("sts", "GetCallerIdentity", "sts:GetCallerIdentity"),
        ("s3", "HeadObject", "s3:GetObject"),
        ("s3", "ListObjectsV2", "s3:ListBucket"),
        ("s3", "UploadPart", "s3:PutObject"),
        ("s3", "CompleteMultipartUpload", "s3:PutObject"),
        ("s3", "PutBucketNotificationConfiguration", "s3:PutBucketNotification"),
        ("cloudwatch", "PutMetricAlarm", "cloudwatch:PutMetricAlarm"),
        ("dynamodbstreams", "DescribeStream", "dynamodb:DescribeStream"),
        ("sagemaker-runtime", "InvokeEndpoint", "sagemaker:InvokeEndpoint"),
        ("logs", "DescribeLogGroups", "logs:DescribeLogGroups"),
        ("apigateway", "GetRestApis", "apigateway:GET"),
        ("apigateway", "UpdateStage", "apigateway:PATCH"),
        ("secretsmanager", "DescribeSecret", "secretsmanager:DescribeSecret"),
    ],
)
def test_a_call_is_recorded_as_the_iam_action_it_needs(
    service: str, operation: str, action: str
) -> None:
    assert calls.iam_action(service, signing_name(service), operation) == action


def test_a_call_is_recorded_with_the_arn_it_acts_on_when_its_parameters_say() -> None:
    region = "us-west-1"
    assert calls.resource_arn("s3", region, {"Bucket": "b", "Key": "k/1"}) == "arn:aws:s3:::b/k/1"
    assert calls.resource_arn("s3", region, {"Bucket": "b"}) == "arn:aws:s3:::b"
    assert (
        calls.resource_arn("cloudformation", region, {"StackName": "imagelabeller-s3"})
        == "arn:aws:cloudformation:us-west-1:*:stack/imagelabeller-s3/*"
    )
    assert (
        calls.resource_arn("sqs", region, {"QueueUrl": "https://sqs/123/imagelabeller-uploads"})
        == "arn:aws:sqs:us-west-1:*:imagelabeller-uploads"
    )
    assert (
        calls.resource_arn("secretsmanager", region, {"SecretId": "imagelabeller-webhook-secret"})
        == "arn:aws:secretsmanager:us-west-1:*:secret:imagelabeller-webhook-secret-??????"
    )
    assert calls.resource_arn("sts", region, {}) is None


def test_the_deploys_clients_record_each_call_when_the_variable_names_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv(calls.CALL_LOG_VARIABLE, str(log))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    context = RunContext(lambda line: None)
    s3 = context.client("s3", "us-west-1")
    cloudformation = context.client("cloudformation", "us-west-1")
    cloudwatch = context.client("cloudwatch", "us-east-2")
    with Stubber(s3) as s3_stub, Stubber(cloudformation) as cfn_stub, Stubber(cloudwatch) as cw:
        s3_stub.add_response("head_object", {}, {"Bucket": "artifacts", "Key": "functions/a.zip"})
        cfn_stub.add_response("describe_stacks", {"Stacks": []}, {"StackName": "imagelabeller-s3"})
        cw.add_response("describe_alarms", {})
        s3.head_object(Bucket="artifacts", Key="functions/a.zip")
        cloudformation.describe_stacks(StackName="imagelabeller-s3")
        cloudwatch.describe_alarms()

    assert calls.read_call_log(log) == [
        {
            "action": "s3:GetObject",
            "operation": "s3.HeadObject",
            "region": "us-west-1",
            "resource": "arn:aws:s3:::artifacts/functions/a.zip",
        },
        {
            "action": "cloudformation:DescribeStacks",
            "operation": "cloudformation.DescribeStacks",
            "region": "us-west-1",
            "resource": "arn:aws:cloudformation:us-west-1:*:stack/imagelabeller-s3/*",
        },
        {
            "action": "cloudwatch:DescribeAlarms",
            "operation": "cloudwatch.DescribeAlarms",
            "region": "us-east-2",
            "resource": None,
        },
    ]


def test_a_dynamodb_transaction_is_recorded_as_the_action_iam_checks_for_each_item() -> None:
    """TransactWriteItems is no IAM action: IAM checks each item's own action on its table."""
    items = [
        {"Put": {"TableName": "ImageLabelIndex", "Item": {}}},
        {"Delete": {"TableName": "ImageLabelIndex", "Key": {}}},
        {"ConditionCheck": {"TableName": "ImageLabels", "Key": {}}},
        {"Update": {"TableName": "ImageLabels", "Key": {}}},
    ]
    requests = calls.iam_requests(
        "dynamodb", "dynamodb", "TransactWriteItems", "us-west-1", {"TransactItems": items}
    )
    table = "arn:aws:dynamodb:us-west-1:*:table/"
    assert requests == [
        ("dynamodb:PutItem", table + "ImageLabelIndex"),
        ("dynamodb:DeleteItem", table + "ImageLabelIndex"),
        ("dynamodb:ConditionCheckItem", table + "ImageLabels"),
        ("dynamodb:UpdateItem", table + "ImageLabels"),
    ]
    assert calls.iam_requests("dynamodb", "dynamodb", "Scan", "us-west-1", {"TableName": "T"}) == [
        ("dynamodb:Scan", table + "T")
    ]


def test_the_deployer_may_check_records_in_a_transaction_and_nothing_more() -> None:
    """The migrate step's transactions check the item's record in ImageLabels; no other
    table needs ConditionCheckItem."""
    table = "arn:aws:dynamodb:us-west-1:111122223333:table/"
    assert policy_check.allowed(policy(), "dynamodb:ConditionCheckItem", table + "ImageLabels")
    assert not policy_check.allowed(
        policy(), "dynamodb:ConditionCheckItem", table + "ImageLabelIndex"
    )


def test_nothing_is_recorded_unless_the_variable_is_set() -> None:
    assert calls.recorder_from_environment({}) is None
    assert calls.recorder_from_environment({calls.CALL_LOG_VARIABLE: " "}) is None
    recorder = calls.recorder_from_environment({calls.CALL_LOG_VARIABLE: "/tmp/calls.jsonl"})
    assert recorder is not None and recorder.path == Path("/tmp/calls.jsonl")


# --- the checker -------------------------------------------------------------------------

SMALL_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::bucket-?/*"},
        {
            "Effect": "Allow",
            "Action": ["cloudformation:DescribeStacks", "cloudformation:CreateStack"],
            "Resource": "arn:aws:cloudformation:*:*:stack/imagelabeller-*/*",
        },
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
    ],
}


@pytest.fixture
def small_policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(SMALL_POLICY), encoding="utf-8")
    return path


def test_calls_the_policy_allows_are_not_listed(small_policy: Path, tmp_path: Path) -> None:
    log = write_log(
        tmp_path / "calls.jsonl",
        call("s3:GetObject", "arn:aws:s3:::bucket-a/functions/x.zip"),  # `*`, `?`
        call("S3:getobject", "arn:aws:s3:::bucket-b/k"),  # actions ignore case
        call(
            "cloudformation:CreateStack",
            "arn:aws:cloudformation:us-west-1:*:stack/imagelabeller-s3/*",
        ),
        call("sts:GetCallerIdentity"),  # no resource known: the action decides
    )
    assert policy_check.missing_permissions(log, small_policy) == []


def test_a_call_the_policy_does_not_allow_is_listed_once_with_its_resource(
    small_policy: Path, tmp_path: Path
) -> None:
    log = write_log(
        tmp_path / "calls.jsonl",
        call("s3:PutObject", "arn:aws:s3:::bucket-a/k"),  # no such action
        call("s3:PutObject", "arn:aws:s3:::bucket-a/k"),
        call("s3:GetObject", "arn:aws:s3:::bucket-ab/k"),  # `?` is one character
        call("s3:GetObject", "arn:aws:s3:::BUCKET-a/k"),  # resources keep their case
        call("cloudformation:DeleteStack", "arn:aws:cloudformation:us-west-1:*:stack/other/*"),
        call("sqs:CreateQueue", region="us-east-2"),
    )
    assert policy_check.missing_permissions(log, small_policy) == [
        "s3:PutObject on arn:aws:s3:::bucket-a/k, region us-west-1",
        "s3:GetObject on arn:aws:s3:::bucket-ab/k, region us-west-1",
        "s3:GetObject on arn:aws:s3:::BUCKET-a/k, region us-west-1",
        "cloudformation:DeleteStack on arn:aws:cloudformation:us-west-1:*:stack/other/*, "
        "region us-west-1",
        "sqs:CreateQueue (resource unknown), region us-east-2",
    ]


def test_the_right_action_on_another_resource_is_not_allowed(small_policy: Path) -> None:
    statements = policy_check.load_policy(small_policy)
    assert policy_check.allowed(statements, "s3:GetObject", "arn:aws:s3:::bucket-a/x")
    assert not policy_check.allowed(statements, "s3:GetObject", "arn:aws:s3:::images/x")
    assert policy_check.allowed(statements, "s3:GetObject")  # resource unknown


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::x"},
    ],
)
def test_what_the_checker_cannot_evaluate_is_refused_not_misread(statement: dict[str, Any]) -> None:
    with pytest.raises(policy_check.UnsupportedPolicy):
        policy_check.statements({"Version": "2012-10-17", "Statement": [statement]})


def test_the_command_line_exits_1_and_names_what_is_missing(
    small_policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "calls.jsonl", call("sqs:CreateQueue"))
    assert policy_check.main([str(log), str(small_policy)]) == 1
    assert "not allowed: sqs:CreateQueue" in capsys.readouterr().out
    write_log(log, call("sts:GetCallerIdentity"))
    assert policy_check.main([str(log), str(small_policy)]) == 0


# --- the policy file ---------------------------------------------------------------------


@cache
def iam_services() -> dict[str, Any]:
    """IAM's Service Authorization Reference, as cfn-lint ships it: by service prefix, the
    actions (lower case) and the resource types each applies to."""
    path = resources.files("cfnlint") / "data" / "AdditionalSpecs" / "Policies.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def iam_actions() -> dict[str, set[str]]:
    return {prefix: set(spec["Actions"]) for prefix, spec in iam_services().items()}


def policy_document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(POLICY_PATH.read_text(encoding="utf-8"))
    return loaded


def test_the_policy_is_one_managed_policy_of_allow_statements() -> None:
    document = policy_document()
    assert document["Version"] == "2012-10-17"
    sids = [statement["Sid"] for statement in document["Statement"]]
    assert len(sids) == len(set(sids)), "Sids must be unique"
    assert all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
    assert policy()  # every statement is an Allow with Action and Resource
    size = len(re.sub(r"\s", "", POLICY_PATH.read_text(encoding="utf-8")))
    assert size <= MANAGED_POLICY_LIMIT, f"{size} characters: over a managed policy's limit"


def test_every_action_the_policy_names_exists_in_iam() -> None:
    unknown = []
    for statement in policy():
        for action in statement.actions:
            prefix, _, name = action.partition(":")
            known = iam_actions().get(prefix, set())
            if not any(
                policy_check.matches(name, candidate, ignore_case=True) for candidate in known
            ):
                unknown.append(action)
    assert unknown == []


def test_the_policy_grants_every_resource_only_where_iam_cannot_scope_or_a_condition_does() -> None:
    broad = []
    for statement in policy_document()["Statement"]:
        if statement["Resource"] != "*" or "Condition" in statement:
            continue
        for action in policy_check.as_tuple(statement["Action"]):
            prefix, _, name = action.partition(":")
            spec = iam_services()[prefix]["Actions"][name.lower()]
            if spec.get("Resources"):
                broad.append(f"{action} applies to {spec['Resources']}")
    assert broad == []


def test_cfn_lint_finds_nothing_in_the_policy_as_a_managed_policy() -> None:
    """cfn-lint checks IAM policies in templates: actions, ARNs, condition keys."""
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "DeployerPolicy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {"PolicyDocument": policy_document()},
            }
        },
    }
    findings = lint(json.dumps(template), config=ManualArgs(regions=["us-west-1"]))
    assert [str(finding) for finding in findings] == []


def test_the_docs_point_to_the_policy_file() -> None:
    assert "deployer-policy.json" in (PROJECT_DIR / "docs" / "DEPLOY.md").read_text("utf-8")


# --- the calls scripts/deploy makes ------------------------------------------------------

AWS_LINE = re.compile(r"^aws (\S+) (\S+) region=(\S+)(.*)$")
PARAMETER = re.compile(r"(\w+)=((?:[^\s<]|<[^>]*>)+)")
# What deploy_stack can call beyond what a plan describes: it deletes a stack whose first
# create failed, and reads the events of one that failed (tools/deploy/cloudformation.py).
STACK_CALLS = ("DescribeStacks", "CreateStack", "UpdateStack", "DeleteStack", "DescribeStackEvents")
# An upload over 8 MB is multipart (boto3's upload_file), and abandoned on failure.
UPLOAD_CALLS = (
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
)


def planned_calls(stage_name: str) -> list[dict[str, Any]]:
    """The calls a real deploy of the stage makes, read from the plan's own description."""
    stage = load_stage(stage_name)
    lines = describe_all([preflight(stage)])
    lines += [line for step in build_plan(stage) for line in describe_all(step.actions)]
    recorded = []
    for line in lines:
        match = AWS_LINE.match(line)
        if not match:
            continue
        service, operations, region, rest = match.groups()
        parameters = dict(PARAMETER.findall(rest))
        if parameters.get("Bucket", "").startswith("<"):
            parameters["Bucket"] = f"imagelabeller-artifacts-{region}-{ACCOUNT}"
        # `wait:stack_create_complete|stack_update_complete` polls DescribeStacks.
        names = ["DescribeStacks"] if operations.startswith("wait:") else operations.split("|")
        if service == "cloudformation":
            names += list(STACK_CALLS)
        if service == "s3" and "PutObject" in names:
            names += list(UPLOAD_CALLS)
        if service == "dynamodb" and operations in calls.TRANSACTIONS:
            # Described as `Put=<table> ConditionCheck=<table> ...`: one item of each kind.
            kinds = [kind for kind in calls.TRANSACTION_ITEM_ACTIONS if kind in parameters]
            parameters = {
                "TransactItems": [{kind: {"TableName": parameters[kind]}} for kind in kinds]
            }
        for operation in names:
            if service == "s3" and operation == "AbortMultipartUpload":
                requests = [
                    ("s3:AbortMultipartUpload", calls.resource_arn(service, region, parameters))
                ]
            else:
                requests = calls.iam_requests(
                    service, signing_name(service), operation, region, parameters
                )
            recorded += [call(action, resource, region) for action, resource in requests]
    assert recorded, f"no AWS call found in the plan of {stage_name}"
    return recorded


@pytest.mark.parametrize("stage", deployed_stage_names())
def test_every_call_the_deploy_makes_is_allowed_by_the_policy(stage: str) -> None:
    assert policy_check.not_allowed(policy(), planned_calls(stage)) == []


def test_a_policy_without_the_artifacts_upload_fails_the_check() -> None:
    without_uploads = [
        statement for statement in policy() if "s3:PutObject" not in statement.actions
    ]
    missing = policy_check.not_allowed(without_uploads, planned_calls("test"))
    assert any(
        line.startswith("s3:PutObject on arn:aws:s3:::imagelabeller-artifacts-") for line in missing
    )


def test_a_policy_without_the_migrations_record_check_fails_the_check() -> None:
    without_check = [
        statement
        for statement in policy()
        if "dynamodb:ConditionCheckItem" not in statement.actions
    ]
    missing = policy_check.not_allowed(without_check, planned_calls("test"))
    assert missing == [
        "dynamodb:ConditionCheckItem on arn:aws:dynamodb:us-west-1:*:table/ImageLabels, "
        "region us-west-1"
    ]


@pytest.mark.emulator
def test_a_real_run_on_moto_records_only_calls_the_policy_allows(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "calls.jsonl"
    environment = {**moto_server.environment(), calls.CALL_LOG_VARIABLE: str(log)}

    deployed = run_deploy("test", "--only", "s3,dynamodb", environment=environment)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    # The upload of a package over boto3's multipart threshold, through the deploy's clients.
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    region, bucket = "us-west-1", f"imagelabeller-artifacts-us-west-1-{MOTO_ACCOUNT}"
    moto_server.client("s3", region).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
    )
    package = tmp_path / "package"
    package.mkdir()
    (package / "deployment.zip").write_bytes(bytes(9 * 1024 * 1024))
    sam = {
        "Resources": {
            "F": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "./deployment.zip"},
            }
        }
    }
    (package / "sam.json").write_text(json.dumps(sam), encoding="utf-8")
    context = RunContext(lambda line: None)
    upload_package(context.client("s3", region), bucket, region, "test", package, lambda line: None)

    recorded = calls.read_call_log(log)
    actions = {(record["action"], record["resource"]) for record in recorded}
    assert ("sts:GetCallerIdentity", None) in actions
    assert (
        "cloudformation:CreateStack",
        "arn:aws:cloudformation:us-west-1:*:stack/imagelabeller-dynamodb/*",
    ) in actions
    assert "s3.UploadPart" in {record["operation"] for record in recorded}
    assert policy_check.missing_permissions(log, POLICY_PATH) == []


# --- the calls CloudFormation makes ------------------------------------------------------


def resource_actions() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(RESOURCE_ACTIONS.read_text(encoding="utf-8"))
    return loaded


def types_in(template: dict[str, Any]) -> set[str]:
    resources_ = template.get("Resources", {}).values()
    return {str(resource["Type"]) for resource in resources_ if "Type" in resource}


def expanded(types: set[str]) -> set[str]:
    """The types CloudFormation creates: SAM's types become the ones the transform writes."""
    expands: dict[str, list[str]] = resource_actions()["serverless_expands_to"]
    found = set()
    for resource_type in types:
        if resource_type.startswith("AWS::Serverless::"):
            assert resource_type in expands, f"no expansion for {resource_type}"
            found.update(expands[resource_type])
        else:
            found.add(resource_type)
    return found


def stack_templates() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every stack of tools/deploy/stages.json, for the test stage: its name and template
    (for the app stack, .chalice/merge-template.json, which `chalice package` merges)."""
    stacks: dict[str, Any] = json.loads(STAGES.read_text(encoding="utf-8"))["stacks"]
    found = {}
    for key, stack in stacks.items():
        name = str(stack["name"]).format(stage="test")
        if stack.get("template"):
            found[key] = (name, load_template(Path(stack["template"]).name))
        elif key == "app":
            found[key] = (name, json.loads(MERGE_TEMPLATE.read_text(encoding="utf-8")))
        else:
            assert key in INLINE_TEMPLATES, f"stack {key}: add its inline template to this test"
            module, function = INLINE_TEMPLATES[key]
            found[key] = (name, json.loads(getattr(importlib.import_module(module), function)()))
    return found


def types_our_stacks_use() -> dict[str, set[str]]:
    """Resource types by stack: every stack of tools/deploy/stages.json (the app stack's
    are `chalice package`'s types plus those the merge template adds), and every template
    in cloudformation/."""
    used = {path.name: types_in(load_template(path.name)) for path in TEMPLATE_DIR.glob("*.yaml")}
    for key, (_, template) in stack_templates().items():
        used[key] = types_in(template) | (CHALICE_PACKAGE_TYPES if key == "app" else set())
    return {stack: expanded(types) for stack, types in used.items()}


@cache
def provider_handlers(resource_type: str) -> dict[str, Any]:
    """The resource-provider schema's handlers (cfn-lint's copy of the registry)."""
    schemas = resources.files("cfnlint") / "data" / "schemas"
    index = json.loads((schemas / "providers" / "us-east-1.json").read_text(encoding="utf-8"))
    schema = json.loads((schemas / "resources" / f"{index[resource_type]}.json").read_text("utf-8"))
    handlers: dict[str, Any] = schema["handlers"]
    return handlers


@pytest.mark.parametrize("stack", sorted(types_our_stacks_use()))
def test_every_resource_type_of_our_stacks_is_in_the_table(stack: str) -> None:
    table = resource_actions()["resource_types"]
    missing = sorted(types_our_stacks_use()[stack] - set(table))
    assert missing == [], "add to tools/deploy/resource_actions.json (its schema's handlers)"


@pytest.mark.parametrize("resource_type", sorted(resource_actions()["resource_types"]))
def test_the_tables_actions_are_the_schemas_handler_permissions_but_those_not_used(
    resource_type: str,
) -> None:
    entry = resource_actions()["resource_types"][resource_type]
    not_used: dict[str, str] = entry.get("not_used", {})
    assert all(reason for reason in not_used.values())
    handlers = provider_handlers(resource_type)
    for operation in OPERATIONS:
        permissions = handlers.get(operation, {}).get("permissions", [])
        expected = [
            action
            for action in permissions
            if not any(
                policy_check.matches(pattern, action, ignore_case=True) for pattern in not_used
            )
        ]
        assert entry[operation] == expected, f"{resource_type} {operation}"
    every = [
        action
        for operation in OPERATIONS
        for action in handlers.get(operation, {}).get("permissions", [])
    ]
    stale = [
        pattern
        for pattern in not_used
        if not any(policy_check.matches(pattern, action, ignore_case=True) for action in every)
    ]
    assert stale == [], f"{resource_type}: not_used names what the schema no longer lists"


def test_the_policy_allows_what_cloudformation_needs_for_every_type_we_use() -> None:
    table = resource_actions()["resource_types"]
    statements = policy()
    missing = sorted(
        {
            f"{action} ({resource_type} {operation})"
            for types in types_our_stacks_use().values()
            for resource_type in types
            for operation in OPERATIONS
            for action in table[resource_type][operation]
            if not policy_check.allowed(statements, action)
        }
    )
    assert missing == []
    assert policy_check.allowed(statements, "cloudformation:CreateChangeSet", SAM_TRANSFORM)


def test_a_type_the_policy_lacks_fails_the_check() -> None:
    without_queues = [s for s in policy() if not any(a.startswith("sqs:") for a in s.actions)]
    assert not policy_check.allowed(without_queues, "sqs:CreateQueue")
    assert "sqs:CreateQueue" in resource_actions()["resource_types"]["AWS::SQS::Queue"]["create"]


# Where a resource's name is, the action that creates it, and its ARN (test stage, region
# us-west-1, account 111122223333). Resources with no name get CloudFormation's
# `<stack>-<logical id>-<suffix>`; the app stack's functions and log groups are named in
# the merge template.
NAMED_BY = {
    "AWS::S3::Bucket": ("BucketName", "s3:CreateBucket", "arn:aws:s3:::{}"),
    "AWS::SQS::Queue": ("QueueName", "sqs:CreateQueue", "arn:aws:sqs:{region}:{account}:{}"),
    "AWS::DynamoDB::Table": (
        "TableName",
        "dynamodb:CreateTable",
        "arn:aws:dynamodb:{region}:{account}:table/{}",
    ),
    "AWS::SecretsManager::Secret": (
        "Name",
        "secretsmanager:CreateSecret",
        "arn:aws:secretsmanager:{region}:{account}:secret:{}-AbCdEf",
    ),
    "AWS::CloudWatch::Alarm": (
        "AlarmName",
        "cloudwatch:PutMetricAlarm",
        "arn:aws:cloudwatch:{region}:{account}:alarm:{}",
    ),
    "AWS::Logs::LogGroup": (
        "LogGroupName",
        "logs:CreateLogGroup",
        "arn:aws:logs:{region}:{account}:log-group:{}",
    ),
    "AWS::Lambda::LayerVersion": (
        "LayerName",
        "lambda:PublishLayerVersion",
        "arn:aws:lambda:{region}:{account}:layer:{}",
    ),
    "AWS::IAM::Role": ("RoleName", "iam:CreateRole", "arn:aws:iam::{account}:role/{}"),
    "AWS::SNS::Topic": ("TopicName", "sns:CreateTopic", "arn:aws:sns:{region}:{account}:{}"),
    "AWS::SageMaker::Endpoint": (
        "EndpointName",
        "sagemaker:CreateEndpoint",
        "arn:aws:sagemaker:{region}:{account}:endpoint/{}",
    ),
}
# The merge template gives the app stack's functions their names; Chalice gives the type.
APP_FUNCTIONS = ("APIHandler", "LabelNewImages", "RegisterUploads", "DeliverCallbacks")


def named_resources() -> list[tuple[str, str, str]]:
    """(where, action, ARN) for each resource our stacks create with a name we know."""
    region = "us-west-1"
    found = []
    for key, (stack, template) in stack_templates().items():
        parameters = {
            name: str(spec.get("Default", ""))
            for name, spec in template.get("Parameters", {}).items()
        }
        parameters.update(AppStackName="imagelabeller-test")
        deployment = Deployment(
            region=region, account_id=ACCOUNT, stack_name=stack, parameters=parameters
        )
        for logical_id, resource in template.get("Resources", {}).items():
            resource_type = resource.get("Type")
            if key == "app" and logical_id in APP_FUNCTIONS:
                name = deployment.resolve(resource["Properties"]["FunctionName"])
                arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
                found.append((f"{key} {logical_id}", "lambda:CreateFunction", arn))
                continue
            if (
                key == "app"
                and resource_type is None
                and "LogGroupName" in resource.get("Properties", {})
            ):
                resource_type = "AWS::Logs::LogGroup"
            if resource_type not in NAMED_BY:
                continue
            field, action, pattern = NAMED_BY[resource_type]
            value = resource.get("Properties", {}).get(field)
            name = deployment.resolve(value) if value else f"{stack}-{logical_id}-1A2B3C4D5E6F"
            if resource_type == "AWS::SageMaker::Endpoint":
                name = name.lower()
            arn = pattern.format(name, region=region, account=ACCOUNT)
            found.append((f"{key} {logical_id}", action, arn))
    return found


def test_the_policy_allows_creating_each_resource_under_the_name_it_gets() -> None:
    statements = policy()
    named = named_resources()
    assert len(named) > 20
    refused = [
        f"{where}: {action} on {arn}"
        for where, action, arn in named
        if not policy_check.allowed(statements, action, arn)
    ]
    assert refused == []


def test_a_resource_named_outside_our_prefix_is_refused() -> None:
    statements = policy()
    assert not policy_check.allowed(
        statements, "sqs:CreateQueue", f"arn:aws:sqs:us-west-1:{ACCOUNT}:someone-elses-queue"
    )
    assert not policy_check.allowed(
        statements, "dynamodb:DeleteTable", f"arn:aws:dynamodb:us-west-1:{ACCOUNT}:table/Other"
    )
