"""The artifacts bucket, and the upload of what `chalice package` writes.

Lambda takes a zip over 50 MiB only from S3, so the app stack's template must point at an
uploaded copy (what `aws cloudformation package` does). Every region gets its own bucket,
`imagelabeller-artifacts-<region>-<account>`, made by a small stack whose template is
below. Keys are content hashes: an unchanged zip is not uploaded again, and an older
template still finds its zip, which a CloudFormation rollback of the app stack needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Say = Callable[[str], None]

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
BUCKET_NAME = "imagelabeller-artifacts-${AWS::Region}-${AWS::AccountId}"

ARTIFACTS_TEMPLATE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": (
        "ImageLabeller: the deploy artifacts bucket (Lambda packages and packaged "
        "templates), made by scripts/deploy (tools/deploy/artifacts.py)"
    ),
    "Resources": {
        "ArtifactsBucket": {
            "Type": "AWS::S3::Bucket",
            # The app stack's current and previous templates point into this bucket. A first
            # create that rolls back deletes it (still empty): the next try can create it.
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketName": {"Fn::Sub": BUCKET_NAME},
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "AbortIncompleteUploads",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        }
                    ]
                },
            },
        },
        "ArtifactsBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "ArtifactsBucket"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
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
                    ],
                },
            },
        },
    },
    "Outputs": {
        "BucketName": {
            "Description": "Where scripts/deploy uploads Lambda packages and templates",
            "Value": {"Ref": "ArtifactsBucket"},
        }
    },
}


def artifacts_template_body() -> str:
    return json.dumps(ARTIFACTS_TEMPLATE, indent=2)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def function_code_key(digest: str) -> str:
    return f"functions/{digest}.zip"


def template_key(stage: str, digest: str) -> str:
    return f"templates/{stage}/{digest}.json"


def template_url(bucket: str, region: str, key: str) -> str:
    """Path-style: CloudFormation accepts both styles, and emulators read only this one."""
    return f"https://s3.{region}.amazonaws.com/{bucket}/{key}"


def local_code_paths(template: Mapping[str, Any]) -> set[str]:
    """The local files the template's functions point at (Chalice: ./deployment.zip)."""
    paths = set()
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != SERVERLESS_FUNCTION:
            continue
        code = resource.get("Properties", {}).get("CodeUri")
        if isinstance(code, str) and not code.startswith("s3://"):
            paths.add(code)
    return paths


def with_code_in_s3(
    template: Mapping[str, Any], locations: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """A copy of the template whose functions' CodeUri is {"Bucket", "Key"} in S3."""
    packaged: dict[str, Any] = json.loads(json.dumps(template))
    for resource in packaged.get("Resources", {}).values():
        if resource.get("Type") != SERVERLESS_FUNCTION:
            continue
        properties = resource.get("Properties", {})
        code = properties.get("CodeUri")
        if isinstance(code, str) and code in locations:
            properties["CodeUri"] = dict(locations[code])
    return packaged


def upload_package(
    s3: Any, bucket: str, region: str, stage: str, package_dir: Path, say: Say
) -> str:
    """Upload the zip and the rewritten template; return the template's URL.

    `package_dir` holds what `chalice package` wrote (sam.json, deployment.zip); the
    rewritten template is also written there, as packaged.json.
    """
    template: dict[str, Any] = json.loads((package_dir / "sam.json").read_text("utf-8"))
    local_paths = local_code_paths(template)
    if not local_paths:
        raise ValueError(f"{package_dir / 'sam.json'} has no function with a local CodeUri")
    locations = {}
    for local_path in sorted(local_paths):
        path = (package_dir / local_path).resolve()
        key = function_code_key(sha256_of_file(path))
        upload_once(s3, bucket, key, path, say)
        locations[local_path] = {"Bucket": bucket, "Key": key}
    body = json.dumps(with_code_in_s3(template, locations), indent=2, sort_keys=True)
    packaged_path = package_dir / "packaged.json"
    packaged_path.write_text(body + "\n", encoding="utf-8")
    key = template_key(stage, sha256_of_file(packaged_path))
    upload_once(s3, bucket, key, packaged_path, say)
    return template_url(bucket, region, key)


def upload_once(s3: Any, bucket: str, key: str, path: Path, say: Say) -> None:
    """Upload a file to a content-addressed key, unless it is there already."""
    if object_exists(s3, bucket, key):
        say(f"s3://{bucket}/{key}: already uploaded")
        return
    size_mb = path.stat().st_size / 1e6
    say(f"s3://{bucket}/{key}: uploading {path.name} ({size_mb:.1f} MB)")
    s3.upload_file(str(path), bucket, key)


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
