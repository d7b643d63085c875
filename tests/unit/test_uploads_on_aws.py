"""Direct uploads on the AWS backend (moto): a presigned S3 PUT, then the S3 notification
(through SQS) registers the image like any other."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from chalicelib.adapters.dynamodb import DynamoDBLabelTable
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.s3 import S3ImageStore
from chalicelib.config import Limits
from chalicelib.domain.models import Status
from chalicelib.events.callbacks import sqs_record
from chalicelib.events.uploads import uploaded_image_ids
from chalicelib.uploads import upload_key
from chalicelib.use_cases import UseCases, wire
from tests.fixtures.aws import BUCKET
from tests.support import NoNetwork, photo_jpeg


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


def test_presigned_put_then_notification_registers_and_labels(
    labelling_service: UseCases, s3_client: Any
) -> None:
    ticket = labelling_service.uploads.start_upload("image/jpeg")
    assert ticket.target.url.startswith(f"https://{BUCKET}.s3.amazonaws.com/uploads/")
    data = photo_jpeg("coffee")
    put = requests.put(ticket.target.url, data=data, headers=ticket.target.headers, timeout=10)
    assert put.status_code == 200
    [image_id] = notify(upload_key(ticket.image_id), len(data))
    record = labelling_service.uploads.register_upload(image_id)
    assert record is not None and record.status is Status.NOT_CLASSIFIED
    assert s3_client.get_object(Bucket=BUCKET, Key=image_id)["Body"].read() == data
    with pytest.raises(s3_client.exceptions.NoSuchKey):
        s3_client.get_object(Bucket=BUCKET, Key=upload_key(image_id))
    assert labelling_service.uploads.register_upload(image_id) == record  # a replayed notification
    labelling_service.labelling.label_images([image_id])
    assert labelling_service.records.get(image_id).labels[0].name == "espresso"


def test_notification_without_an_upload_changes_nothing(service: UseCases) -> None:
    assert service.uploads.register_upload("00000000-0000-4000-8000-000000000000") is None


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
