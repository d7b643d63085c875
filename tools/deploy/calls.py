"""A record of every AWS call a real deploy makes, as the IAM actions it needs.

When `IMAGELABELLER_DEPLOY_CALL_LOG=<file>` is set, `scripts/deploy` appends one JSON line
per API call to that file (tools/deploy/actions.py `RunContext` asks for it):

    {"action": "s3:GetObject", "operation": "s3.HeadObject", "region": "us-west-1",
     "resource": "arn:aws:s3:::imagelabeller-artifacts-.../functions/<sha>.zip"}

`resource` is an ARN built from the call's parameters where we know how (S3 buckets and
keys, stacks, tables, queues, functions, secrets, log groups, topics, endpoints), with `*`
for the account, or null. A DynamoDB transaction has no IAM action of its own: IAM checks
each of its items (PutItem, UpdateItem, DeleteItem, ConditionCheckItem on that item's
table), so it is recorded as one line per item. tools/deploy/policy_check.py checks such
a log against docs/deployer-policy.json.

What it cannot see: the calls CloudFormation makes on the deployer's behalf (see
tools/deploy/resource_actions.json) and the calls of subprocesses (`chalice package`
makes none; the system tests call the API over HTTP).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CALL_LOG_VARIABLE = "IMAGELABELLER_DEPLOY_CALL_LOG"

# botocore's signing name is the IAM prefix except for these (by botocore service name).
IAM_PREFIXES = {
    "cloudwatch": "cloudwatch",  # signs as "monitoring"
    "dynamodbstreams": "dynamodb",
    "sagemaker-runtime": "sagemaker",
}
# A DynamoDB transaction's items, by their key in TransactItems, and the action IAM checks
# for each (TransactWriteItems and TransactGetItems are no IAM actions).
TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
TRANSACTIONS = ("TransactWriteItems", "TransactGetItems")
# API Gateway's management actions are HTTP verbs: apigateway:GET on /restapis/...
APIGATEWAY_VERBS = (
    ("Get", "GET"),
    ("Create", "POST"),
    ("Import", "PUT"),
    ("Put", "PUT"),
    ("Update", "PATCH"),
    ("Delete", "DELETE"),
)
# Operations whose IAM action is not named like the operation.
IAM_ACTIONS = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "UploadPart"): "s3:PutObject",
    ("s3", "UploadPartCopy"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
    ("s3", "CopyObject"): "s3:PutObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "ListParts"): "s3:ListMultipartUploadParts",
    ("s3", "ListMultipartUploads"): "s3:ListBucketMultipartUploads",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    ("s3", "PutBucketNotificationConfiguration"): "s3:PutBucketNotification",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
}


def iam_action(service: str, signing_name: str, operation: str) -> str:
    """`<iam prefix>:<Action>` for a botocore call (service name, signing name, operation)."""
    mapped = IAM_ACTIONS.get((service, operation))
    if mapped:
        return mapped
    if service == "apigateway":
        for start, verb in APIGATEWAY_VERBS:
            if operation.startswith(start):
                return f"apigateway:{verb}"
    prefix = IAM_PREFIXES.get(service, signing_name or service)
    return f"{prefix}:{operation}"


def resource_arn(service: str, region: str, params: Mapping[str, Any]) -> str | None:
    """The ARN the call acts on, with `*` for the account; None when we cannot tell."""
    prefix = f"{region}:*"  # region and account of a regional ARN

    def arn_or(name: object, arn: str) -> str:
        return str(name) if str(name).startswith("arn:") else arn

    if service == "s3" and params.get("Bucket"):
        key = params.get("Key")
        return f"arn:aws:s3:::{params['Bucket']}" + (f"/{key}" if key is not None else "")
    if service == "cloudformation" and params.get("StackName"):
        name = params["StackName"]
        return arn_or(name, f"arn:aws:cloudformation:{prefix}:stack/{name}/*")
    if service == "dynamodb" and params.get("TableName"):
        return f"arn:aws:dynamodb:{prefix}:table/{params['TableName']}"
    if service == "dynamodbstreams" and params.get("StreamArn"):
        return str(params["StreamArn"])
    if service == "sqs" and (params.get("QueueUrl") or params.get("QueueName")):
        name = str(params.get("QueueUrl") or params["QueueName"]).rstrip("/").rsplit("/", 1)[-1]
        return f"arn:aws:sqs:{prefix}:{name}"
    if service == "lambda" and params.get("FunctionName"):
        name = params["FunctionName"]
        return arn_or(name, f"arn:aws:lambda:{prefix}:function:{name}")
    if service == "secretsmanager" and params.get("SecretId"):
        # A secret's ARN ends in `-` and six random characters.
        name = params["SecretId"]
        return arn_or(name, f"arn:aws:secretsmanager:{prefix}:secret:{name}-??????")
    if service == "logs" and params.get("logGroupName"):
        return f"arn:aws:logs:{prefix}:log-group:{params['logGroupName']}"
    if service == "sns" and params.get("TopicArn"):
        return str(params["TopicArn"])
    if service in ("sagemaker", "sagemaker-runtime") and params.get("EndpointName"):
        return f"arn:aws:sagemaker:{prefix}:endpoint/{str(params['EndpointName']).lower()}"
    return None


def iam_requests(
    service: str, signing_name: str, operation: str, region: str, params: Mapping[str, Any]
) -> list[tuple[str, str | None]]:
    """The (IAM action, resource ARN) pairs one call needs: one pair, but for a DynamoDB
    transaction, which IAM authorises item by item."""
    if service == "dynamodb" and operation in TRANSACTIONS:
        return [
            (TRANSACTION_ITEM_ACTIONS[kind], resource_arn(service, region, request))
            for item in params.get("TransactItems", [])
            for kind, request in item.items()
        ]
    return [(iam_action(service, signing_name, operation), resource_arn(service, region, params))]


class CallRecorder:
    """Appends one JSON line per AWS call made through a boto3 session's clients."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # s3transfer uploads parts from several threads

    def attach(self, session: Any) -> None:
        """Record the calls of every client this boto3 session creates from now on."""
        session.events.register("before-parameter-build", self._on_call)

    def _on_call(
        self, params: Mapping[str, Any], model: Any, context: Mapping[str, Any], **_: Any
    ) -> None:
        service_model = model.service_model
        service = service_model.service_name
        region = str(context.get("client_region") or "")
        requests = iam_requests(service, service_model.signing_name, model.name, region, params)
        lines = [
            {
                "action": action,
                "operation": f"{service}.{model.name}",
                "region": region,
                "resource": resource,
            }
            for action, resource in requests
        ]
        with self._lock, open(self.path, "a", encoding="utf-8") as log:
            log.writelines(json.dumps(line) + "\n" for line in lines)


def recorder_from_environment(environment: Mapping[str, str] | None = None) -> CallRecorder | None:
    """The recorder `IMAGELABELLER_DEPLOY_CALL_LOG` asks for, or None when it is unset."""
    environment = os.environ if environment is None else environment
    path = environment.get(CALL_LOG_VARIABLE, "").strip()
    return CallRecorder(Path(path)) if path else None


def read_call_log(path: Path) -> list[dict[str, Any]]:
    """The recorded calls, in order."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
