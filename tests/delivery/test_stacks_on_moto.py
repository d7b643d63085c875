"""The real (non-dry) path against moto_server: create, update, "no updates", re-runs.

moto's CloudFormation creates buckets and tables and keeps outputs and exports, but it
ignores some properties (public access blocks, PITR, SSE, bucket policies): those are
checked by reading the templates (tests/infrastructure), not here. It does not run the SAM
transform either, so the app stack itself is not deployed here; the upload that comes
before it is.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.delivery.support import MOTO_ACCOUNT, PROJECT_DIR, MotoServer, run_deploy
from tools.deploy.artifacts import ARTIFACTS_TEMPLATE, artifacts_template_body, upload_package
from tools.deploy.calls import CALL_LOG_VARIABLE, read_call_log
from tools.deploy.cloudformation import StackRequest, deploy_stack
from tools.deploy.policy_check import missing_permissions

REGION = "us-west-1"  # the test stage's region
STAGE = "test"
TEMPLATES = PROJECT_DIR / "cloudformation"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

SMALL_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Purpose:
    Type: String
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub delivery-tests-${AWS::AccountId}
Outputs:
  BucketName:
    Value: !Ref Bucket
  Purpose:
    Value: !Ref Purpose
"""


def small_stack(purpose: str) -> StackRequest:
    return StackRequest(
        name="delivery-tests-small",
        template={"TemplateBody": SMALL_TEMPLATE},
        parameters={"Purpose": purpose},
        capabilities=(),
        tags={"project": "imagelabeller"},
    )


def test_a_missing_stack_is_created_an_unchanged_one_is_left_and_a_changed_one_updated(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto_server.environment().items():
        monkeypatch.setenv(name, value)
    client = moto_server.client("cloudformation", REGION)
    said: list[str] = []

    created = deploy_stack(client, small_stack("first"), said.append)
    unchanged = deploy_stack(client, small_stack("first"), said.append)
    updated = deploy_stack(client, small_stack("second"), said.append)

    bucket = f"delivery-tests-{MOTO_ACCOUNT}"
    assert created == unchanged == {"BucketName": bucket, "Purpose": "first"}
    assert updated == {"BucketName": bucket, "Purpose": "second"}
    assert [line.split(": ")[1] for line in said if not line.endswith(" s")] == [
        "creating",
        "no changes",
        "updating",
    ]
    stack = client.describe_stacks(StackName="delivery-tests-small")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {tag["Key"]: tag["Value"] for tag in stack["Tags"]} == {"project": "imagelabeller"}


def test_the_s3_and_dynamodb_steps_twice_create_then_keep_the_bucket_and_table(
    moto_server: MotoServer,
) -> None:
    if not (TEMPLATES / "s3.yaml").is_file() or not (TEMPLATES / "dynamodb.yaml").is_file():
        pytest.skip("cloudformation/s3.yaml and dynamodb.yaml are not written yet")
    environment = moto_server.environment()
    s3 = moto_server.client("s3", REGION)
    dynamodb = moto_server.client("dynamodb", REGION)
    cloudformation = moto_server.client("cloudformation", REGION)
    bucket = f"open-devops-images-{REGION}-{MOTO_ACCOUNT}"

    first = run_deploy(STAGE, "--only", "s3,dynamodb", environment=environment)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "imagelabeller-s3: creating" in first.stdout
    assert "imagelabeller-dynamodb: creating" in first.stdout
    stack_ids = {
        name: cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackId"]
        for name in ("imagelabeller-s3", "imagelabeller-dynamodb")
    }
    s3.put_object(Bucket=bucket, Key="an-image", Body=b"bytes")
    dynamodb.put_item(TableName="ImageLabels", Item={"Id": {"S": "an-image"}})

    second = run_deploy(STAGE, "--only", "s3", "--only", "dynamodb", environment=environment)

    assert second.returncode == 0, second.stdout + second.stderr
    assert "creating" not in second.stdout
    for name, stack_id in stack_ids.items():
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        assert stack["StackId"] == stack_id
        assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert s3.get_object(Bucket=bucket, Key="an-image")["Body"].read() == b"bytes"
    item = dynamodb.get_item(TableName="ImageLabels", Key={"Id": {"S": "an-image"}})
    assert "Item" in item
    exports = {export["Name"] for export in cloudformation.list_exports()["Exports"]}
    assert {"imagelabeller-s3-BucketName", "imagelabeller-dynamodb-StreamArn"} <= exports


def test_the_migrate_step_moves_older_items_to_legacy_then_finds_nothing_to_do(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """A stage deployed over data from before tenants: `--only migrate` gives its record the
    tenant legacy and moves its search entry and byte claim under legacy's keys, with calls
    the deployer policy allows; a second run changes nothing."""
    # The tables, and what earlier tests left in them migrated: the counts below are ours.
    tables = run_deploy(STAGE, "--only", "dynamodb,migrate", environment=moto_server.environment())
    assert tables.returncode == 0, tables.stdout + tables.stderr
    dynamodb = moto_server.client("dynamodb", REGION)
    digest = "e5" * 32
    record = {
        "Id": {"S": "old-image"},
        "Status": {"S": "CLASSIFIED"},
        "Sha256": {"S": digest},
        "Label": {"S": "espresso"},
    }
    entry = {
        "LabelKey": {"S": "espresso"},
        "Rank": {"S": "0.050000000#old-image"},
        "ImageId": {"S": "old-image"},
        "Name": {"S": "espresso"},
        "Score": {"N": "0.95"},
    }
    claim = {
        "LabelKey": {"S": f"SHA256#{digest}"},
        "Rank": {"S": "IMAGE"},
        "ImageId": {"S": "old-image"},
    }
    dynamodb.put_item(TableName="ImageLabels", Item=record)
    for item in (entry, claim):
        dynamodb.put_item(TableName="ImageLabelIndex", Item=item)
    log = tmp_path / "calls.jsonl"
    environment = {**moto_server.environment(), CALL_LOG_VARIABLE: str(log)}

    first = run_deploy(STAGE, "--only", "migrate", environment=environment)
    second = run_deploy(STAGE, "--only", "migrate", environment=environment)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "ImageLabels: 1 records given the tenant legacy" in first.stdout
    assert "1 search entries and 1 byte claims moved under legacy" in first.stdout
    assert "migrated: 3 changes" in first.stdout
    stored = dynamodb.get_item(TableName="ImageLabels", Key={"Id": record["Id"]})["Item"]
    assert stored == {**record, "Tenant": {"S": "legacy"}}
    index = [
        item
        for item in dynamodb.scan(TableName="ImageLabelIndex")["Items"]
        if item.get("ImageId") == record["Id"]
    ]
    assert sorted(index, key=lambda item: str(item["LabelKey"]["S"])) == [
        {**claim, "LabelKey": {"S": f"SHA256#legacy#{digest}"}},
        {**entry, "LabelKey": {"S": "legacy#espresso"}},
    ]
    assert second.returncode == 0, second.stdout + second.stderr
    assert "migrated: up to date" in second.stdout
    assert missing_permissions(log) == []
    assert "dynamodb:ConditionCheckItem" in {call["action"] for call in read_call_log(log)}


def test_the_artifacts_stack_and_the_upload_are_idempotent(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in moto_server.environment().items():
        monkeypatch.setenv(name, value)
    client = moto_server.client("cloudformation", REGION)
    s3 = moto_server.client("s3", REGION)
    request = StackRequest(
        "imagelabeller-artifacts", {"TemplateBody": artifacts_template_body()}, {}, (), {}
    )
    outputs = deploy_stack(client, request, print)
    bucket = outputs["BucketName"]
    assert bucket == f"imagelabeller-artifacts-{REGION}-{MOTO_ACCOUNT}"
    assert deploy_stack(client, request, print) == outputs
    package_dir = fake_chalice_package(tmp_path)
    said: list[str] = []

    url = upload_package(s3, bucket, REGION, STAGE, package_dir, said.append)
    again = upload_package(s3, bucket, REGION, STAGE, package_dir, said.append)

    assert url == again
    # Path-style: CloudFormation takes it, and MiniStack reads no other (tests/rehearsal).
    assert url.startswith(f"https://s3.{REGION}.amazonaws.com/{bucket}/templates/{STAGE}/")
    assert [line.rsplit(": ", 1)[1].split(" ")[0] for line in said] == [
        "uploading",
        "uploading",
        "already",
        "already",
    ]
    key = url.split(f".amazonaws.com/{bucket}/", 1)[1]
    packaged = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    code = packaged["Resources"]["APIHandler"]["Properties"]["CodeUri"]
    assert code["Bucket"] == bucket
    zipped = s3.get_object(Bucket=bucket, Key=code["Key"])["Body"].read()
    assert zipped == (package_dir / "deployment.zip").read_bytes()
    assert packaged["Resources"]["LabelNewImages"]["Properties"]["CodeUri"] == code


def fake_chalice_package(folder: Path) -> Path:
    """What `chalice package` writes, in small: two functions sharing ./deployment.zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "app = None\n")
    (folder / "deployment.zip").write_bytes(buffer.getvalue())
    function = {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "./deployment.zip"}}
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {"APIHandler": function, "LabelNewImages": function},
    }
    (folder / "sam.json").write_text(json.dumps(template), encoding="utf-8")
    return folder


def test_the_inline_artifacts_template_keeps_the_bucket_private_and_tls_only() -> None:
    bucket = ARTIFACTS_TEMPLATE["Resources"]["ArtifactsBucket"]
    properties = bucket["Properties"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == (
        "RetainExceptOnCreate",
        "Retain",
    )
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    statement = ARTIFACTS_TEMPLATE["Resources"]["ArtifactsBucketPolicy"]["Properties"][
        "PolicyDocument"
    ]["Statement"]
    assert statement == [
        {
            "Sid": "DenyWithoutTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [
                {"Fn::GetAtt": ["ArtifactsBucket", "Arn"]},
                {"Fn::Sub": "${ArtifactsBucket.Arn}/*"},
            ],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]


def test_the_inline_artifacts_template_passes_cfn_lint(tmp_path: Path) -> None:
    template = tmp_path / "artifacts.json"
    template.write_text(artifacts_template_body(), encoding="utf-8")

    result = subprocess.run(
        [str(CFN_LINT), "--regions", REGION, "--", str(template)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
