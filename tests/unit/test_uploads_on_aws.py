"""Direct uploads on the AWS backend (moto): a presigned S3 POST, then the S3 notification
(through SQS) registers the image like any other."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import DynamoDBLabelTable
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.s3 import S3ImageStore
from chalicelib.config import Limits, Settings
from chalicelib.domain.models import Status
from chalicelib.events.callbacks import sqs_record
from chalicelib.events.uploads import uploaded_image_ids
from chalicelib.uploads import UPLOAD_SECONDS, upload_key
from chalicelib.use_cases import UseCases, wire
from tests.fixtures.aws import BUCKET, REGION
from tests.support import TENANT, NoNetwork, photo_jpeg


@pytest.fixture
def service(
    s3_store: S3ImageStore, dynamodb_table: DynamoDBLabelTable, tiny_labeller: OnnxLabeller
) -> UseCases:
    """On the tiny stand-in graph: for the tests that hold whatever the labels are called."""
    return wire(s3_store, dynamodb_table, tiny_labeller, NoNetwork(), Limits())


@pytest.fixture
def labelling_service(
    s3_store: S3ImageStore, dynamodb_table: DynamoDBLabelTable, onnx_labeller: OnnxLabeller
) -> UseCases:
    """On the real Lite0, for the tests that check what the labels say."""
    return wire(s3_store, dynamodb_table, onnx_labeller, NoNetwork(), Limits())


def sqs_event_for_upload(bucket: str, key: str, size: int) -> dict[str, Any]:
    """The SQS event the upload handler gets when S3 reports `key` created."""
    notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}},
            }
        ]
    }
    queue_arn = "arn:aws:sqs:local:000000000000:imagelabeller-uploads"
    return {"Records": [sqs_record(key, json.dumps(notification), queue_arn)]}


def notify(key: str, size: int) -> list[str]:
    """What the upload handler reads from the queue when S3 reports the new object."""
    return uploaded_image_ids(sqs_event_for_upload(BUCKET, key, size)["Records"])


def test_presigned_post_then_notification_registers_and_labels(
    labelling_service: UseCases, s3_client: Any
) -> None:
    ticket = labelling_service.uploads.start_upload(TENANT, "image/jpeg")
    assert ticket.target.url == f"https://{BUCKET}.s3.amazonaws.com/"
    assert ticket.target.fields["key"] == upload_key(TENANT, ticket.image_id)
    data = photo_jpeg("coffee")
    posted = requests.post(
        ticket.target.url,
        data=ticket.target.fields,
        files={"file": ("coffee.jpg", data, "image/jpeg")},
        timeout=10,
    )
    assert posted.status_code == 204, posted.text
    uploaded = s3_client.head_object(Bucket=BUCKET, Key=upload_key(TENANT, ticket.image_id))
    assert (uploaded["ContentLength"], uploaded["ContentType"]) == (len(data), "image/jpeg")
    [image_id] = notify(upload_key(TENANT, ticket.image_id), len(data))
    record = labelling_service.uploads.register_upload(TENANT, image_id, len(data))
    assert record is not None and record.status is Status.NOT_CLASSIFIED
    assert s3_client.get_object(Bucket=BUCKET, Key=image_id)["Body"].read() == data
    with pytest.raises(s3_client.exceptions.NoSuchKey):
        s3_client.get_object(Bucket=BUCKET, Key=upload_key(TENANT, image_id))
    assert (
        labelling_service.uploads.register_upload(TENANT, image_id) == record
    )  # a replayed notification
    labelling_service.labelling.label_images([image_id])
    assert labelling_service.records.get(TENANT, image_id).labels[0].name == "espresso"


def test_the_presigned_post_policy_caps_the_size_and_fixes_key_and_content_type(
    s3_client: Any, dynamodb_client: Any, tiny_model_env: Path
) -> None:
    """S3 refuses a POST that breaks its policy (EntityTooLarge over the range) before
    storing anything. moto does not check the policy, so this reads what S3 would check.
    Built as deployed stages build it: Signature V4 (new buckets take no other), on the
    bucket's regional host."""
    settings = Settings.from_environ(
        {
            "IMAGELABELLER_BACKEND": "aws",
            "IMAGELABELLER_BUCKET": BUCKET,
            "IMAGELABELLER_AWS_REGION": REGION,
            "IMAGELABELLER_MODEL_PATH": str(tiny_model_env),
            "IMAGELABELLER_MAX_IMAGE_BYTES": "123456",
        }
    )
    service = bootstrap.build(settings).use_cases
    started = datetime.now(UTC)
    ticket = service.uploads.start_upload(TENANT, "image/png")
    assert ticket.target.url == f"https://{BUCKET}.s3.{REGION}.amazonaws.com/"
    fields = ticket.target.fields
    assert fields["Content-Type"] == "image/png"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 123_456] in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert {"key": upload_key(TENANT, ticket.image_id)} in conditions
    assert {"bucket": BUCKET} in conditions
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert abs(expiration - (started + timedelta(seconds=UPLOAD_SECONDS))) < timedelta(seconds=5)


def test_notification_without_an_upload_changes_nothing(service: UseCases) -> None:
    assert service.uploads.register_upload(TENANT, "00000000-0000-4000-8000-000000000000") is None
    assert (
        service.uploads.register_upload(TENANT, "00000000-0000-4000-8000-000000000000", 10) is None
    )


def test_only_created_objects_under_uploads_are_registered() -> None:
    def body(event_name: str, key: str) -> dict[str, Any]:
        return {
            "body": json.dumps(
                {"Records": [{"eventName": event_name, "s3": {"object": {"key": key}}}]}
            )
        }

    records = [
        body("ObjectCreated:Put", "uploads/abc"),
        body("ObjectRemoved:Delete", "uploads/def"),
        body("ObjectCreated:Put", "abc"),  # a registered image, not an upload
        {"body": json.dumps({"Event": "s3:TestEvent"})},
        {"body": "not json"},
    ]
    assert uploaded_image_ids(records) == ["abc"]
