"""LabelTable on the DynamoDB table `ImageLabels` (partition key `Id`).

Every change is one conditional request, so a replayed stream record can never turn a
finished image back, and two workers finishing the same image cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.errors import DuplicateImageId
from chalicelib.items import (
    Item,
    classified_changes,
    failed_changes,
    from_item,
    plain_numbers,
    to_item,
    with_decimals,
)
from chalicelib.models import ImageRecord, Label, Status

CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoDBLabelTable:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    def insert(self, record: ImageRecord) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._typed(to_item(record)),
                ConditionExpression="attribute_not_exists(Id)",
            )
        except ClientError as error:
            if _code(error) == CONDITION_FAILED:
                raise DuplicateImageId(record.image_id) from None
            raise

    def get(self, image_id: str) -> ImageRecord | None:
        answer = self._client.get_item(
            TableName=self._table, Key=self._key(image_id), ConsistentRead=True
        )
        if "Item" not in answer:
            return None
        plain = {
            name: self._deserializer.deserialize(value) for name, value in answer["Item"].items()
        }
        return from_item(plain_numbers(plain))

    def complete(self, image_id: str, labels: tuple[Label, ...], model: str, at: datetime) -> bool:
        return self._finish(image_id, classified_changes(labels, model, at))

    def fail(self, image_id: str, error: str, model: str | None, at: datetime) -> bool:
        return self._finish(image_id, failed_changes(error, model, at))

    def count_attempt(self, image_id: str) -> int:
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=self._key(image_id),
                UpdateExpression="ADD Attempts :one",
                ConditionExpression="attribute_exists(Id)",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            if _code(error) == CONDITION_FAILED:
                return 0
            raise
        return int(answer["Attributes"]["Attempts"]["N"])

    def _finish(self, image_id: str, changes: Item) -> bool:
        names = {f"#a{index}": name for index, name in enumerate(changes)}
        values = {f":v{index}": value for index, value in enumerate(changes.values())}
        assignments = ", ".join(
            f"{name} = {value}" for name, value in zip(names, values, strict=True)
        )
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(image_id),
                UpdateExpression=f"SET {assignments}",
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={**names, "#status": "Status"},
                ExpressionAttributeValues={
                    **self._typed(values),
                    ":pending": {"S": Status.NOT_CLASSIFIED.value},
                },
            )
        except ClientError as error:
            if _code(error) == CONDITION_FAILED:
                return False
            raise
        return True

    def _key(self, image_id: str) -> dict[str, Any]:
        return {"Id": {"S": image_id}}

    def _typed(self, item: Item) -> dict[str, Any]:
        return {
            name: self._serializer.serialize(value) for name, value in with_decimals(item).items()
        }


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
