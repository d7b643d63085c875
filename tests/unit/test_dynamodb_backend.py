"""The AWS backend on moto in process: the stored item's shape and the stream it feeds."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb import DynamoDBLabelTable
from chalicelib.domain.models import Label
from chalicelib.events.stream import image_ids_to_label
from chalicelib.local.dynamodb_streams import DynamoDBStreamSource
from tests.contract.test_label_table import T0, new_record
from tests.fixtures.aws import LABEL_INDEX_TABLE, REGION, TABLE, ConflictingClient
from tests.support import TENANT

# The cancellation reasons of a transaction that met a concurrent one.
CLAIM_CONFLICT = ["None", "TransactionConflict"]  # the record, its claim


def stream_source(dynamodb_client: Any) -> DynamoDBStreamSource:
    arn = dynamodb_client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    return DynamoDBStreamSource(boto3.client("dynamodbstreams", region_name=REGION), arn)


def test_item_keeps_the_original_id_and_label_attributes(
    dynamodb_client: Any, dynamodb_table: DynamoDBLabelTable
) -> None:
    record = new_record()
    dynamodb_table.insert(record)
    dynamodb_table.complete(
        record.image_id, (Label("espresso", 0.95), Label("cup", 0.01)), "m", T0, tenant=TENANT
    )
    item = dynamodb_client.get_item(TableName=TABLE, Key={"Id": {"S": record.image_id}})["Item"]
    assert item["Id"] == {"S": record.image_id}
    assert item["Label"] == {"S": "espresso, cup"}
    assert item["Status"] == {"S": "CLASSIFIED"}
    assert item["Labels"]["L"][0]["M"] == {"Name": {"S": "espresso"}, "Score": {"N": "0.95"}}


def test_stream_source_hands_over_inserts_shaped_as_lambda_delivers_them(
    dynamodb_client: Any, dynamodb_table: DynamoDBLabelTable
) -> None:
    source = stream_source(dynamodb_client)
    first, second = new_record(), new_record()
    dynamodb_table.insert(first)
    dynamodb_table.insert(second)
    batch = source.read(10)
    assert image_ids_to_label(batch.records) == [first.image_id, second.image_id]
    record = batch.records[0]
    assert record["eventSourceARN"].endswith(
        dynamodb_client.describe_table(TableName=TABLE)["Table"]["LatestStreamLabel"]
    )
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["NewImage"]["Status"] == {"S": "NOT_CLASSIFIED"}


def test_unacknowledged_batch_is_read_again_and_acknowledged_one_is_not(
    dynamodb_client: Any, dynamodb_table: DynamoDBLabelTable
) -> None:
    source = stream_source(dynamodb_client)
    record = new_record()
    dynamodb_table.insert(record)
    first_read = source.read(10)
    assert source.read(10).records == first_read.records
    source.acknowledge(first_read)
    assert source.read(10).records == []
    dynamodb_table.complete(record.image_id, (Label("pug", 0.5),), "m", T0, tenant=TENANT)
    [modify] = source.read(10).records
    assert modify["eventName"] == "MODIFY"
    assert modify["dynamodb"]["OldImage"]["Status"] == {"S": "NOT_CLASSIFIED"}
    assert modify["dynamodb"]["NewImage"]["Status"] == {"S": "CLASSIFIED"}


def test_batches_respect_the_limit(
    dynamodb_client: Any, dynamodb_table: DynamoDBLabelTable
) -> None:
    source = stream_source(dynamodb_client)
    records = [new_record() for _ in range(5)]
    for record in records:
        dynamodb_table.insert(record)
    delivered = []
    while (batch := source.read(2)).records:
        assert len(batch.records) <= 2
        delivered += image_ids_to_label(batch.records)
        source.acknowledge(batch)
    assert delivered == [record.image_id for record in records]


def claim_of(dynamodb_client: Any, sha256: str) -> dict[str, Any] | None:
    key = {"LabelKey": {"S": f"SHA256#{TENANT}#{sha256}"}, "Rank": {"S": "IMAGE"}}
    item: dict[str, Any] | None = dynamodb_client.get_item(
        TableName=LABEL_INDEX_TABLE, Key=key
    ).get("Item")
    return item


def test_the_claim_on_bytes_is_a_search_table_item_that_leaves_with_its_record(
    dynamodb_client: Any, dynamodb_table: DynamoDBLabelTable
) -> None:
    record = new_record()
    dynamodb_table.insert(record)
    claim = claim_of(dynamodb_client, record.image.sha256)
    assert claim is not None and claim["ImageId"] == {"S": record.image_id}
    assert dynamodb_table.delete(record.image_id)
    assert claim_of(dynamodb_client, record.image.sha256) is None


def test_an_insert_that_meets_a_concurrent_claim_tries_again(dynamodb_client: Any) -> None:
    table = DynamoDBLabelTable(
        ConflictingClient(dynamodb_client, conflicts=2, reasons=CLAIM_CONFLICT), TABLE
    )
    record = new_record()
    table.insert(record)
    assert table.get(record.image_id) == record


def test_an_insert_that_keeps_meeting_conflicts_gives_up(dynamodb_client: Any) -> None:
    table = DynamoDBLabelTable(
        ConflictingClient(dynamodb_client, conflicts=99, reasons=CLAIM_CONFLICT), TABLE
    )
    record = new_record()
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        table.insert(record)
    assert table.get(record.image_id) is None
