"""LabelTable on the DynamoDB table `ImageLabels` (partition key `Id`), with its
`Sha256Index` (deduplication) and the search table `ImageLabelIndex` (one item per label
of each CLASSIFIED image: partition key `LabelKey`, sort key `Rank`, best score first).

Search entries are keyed per tenant (`<tenant>#<label>`), so a search reads only the
caller's images. The search table also holds one claim per submitted image's bytes and
tenant (`SHA256#<tenant>#<hex>`, see digest_claim_key), written in the insert's
transaction: the GSI alone cannot refuse a second record of the same bytes, a conditional
put on one key can.

Every change is one conditional request, or one transaction when the search table changes
with the record, so a replayed stream record can never turn a finished image back, and two
workers finishing the same image cannot both win.

Over 300 lines on purpose: it is the whole LabelTable contract on one backend, and each
method is one of those writes; split, the conditions that must agree would be apart.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_errors import (
    CHECK_FAILED,
    CONDITION_FAILED,
    TRANSACTION_CANCELLED,
    TRANSACTION_CONFLICT,
    error_code,
    reason_codes,
)
from chalicelib.adapters.items import (
    Item,
    classified_changes,
    digest_claim_key,
    failed_changes,
    from_item,
    index_entries,
    labels_from_item,
    plain_numbers,
    reopened,
    tenant_label_key,
    tenant_of,
    to_item,
    webhook_item,
    with_decimals,
)
from chalicelib.domain.errors import DuplicateImage, DuplicateImageId, InvalidPageToken
from chalicelib.domain.jsontext import loads_json
from chalicelib.domain.models import ImageRecord, Label, LabelHit, Status, WebhookState

# Tries of an insert whose claim meets a concurrent transaction on the same key.
CLAIM_ATTEMPTS = 5
CLAIM_RETRY_SECONDS = 0.05
SHA256_INDEX = "Sha256Index"
DEFAULT_LABEL_INDEX_TABLE = "ImageLabelIndex"


class DynamoDBLabelTable:
    def __init__(
        self, client: Any, table_name: str, label_index_table: str = DEFAULT_LABEL_INDEX_TABLE
    ) -> None:
        self._client = client
        self._table = table_name
        self._index = label_index_table
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    def insert(self, record: ImageRecord, *, unique_bytes: bool = True) -> None:
        put = {
            "TableName": self._table,
            "Item": self._typed(to_item(record)),
            "ConditionExpression": "attribute_not_exists(Id)",
        }
        if unique_bytes:
            self._insert_claiming_bytes(record, put)
            return
        try:
            self._client.put_item(**put)
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                raise DuplicateImageId(record.image_id) from None
            raise

    def _insert_claiming_bytes(self, record: ImageRecord, put: dict[str, Any]) -> None:
        """The record's put and its claim on its bytes, as one transaction."""
        sha256 = record.image.sha256
        claim_key = digest_claim_key(record.tenant, sha256)
        claim = {
            "TableName": self._index,
            "Item": self._typed({**claim_key, "ImageId": record.image_id}),
            "ConditionExpression": "attribute_not_exists(LabelKey)",
        }
        for attempt in range(1, CLAIM_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=[{"Put": put}, {"Put": claim}])
                return
            except ClientError as error:
                if error_code(error) != TRANSACTION_CANCELLED:
                    raise
                record_reason, claim_reason = reason_codes(error, 2)
                if record_reason == CHECK_FAILED:
                    raise DuplicateImageId(record.image_id) from None
                if claim_reason == CHECK_FAILED:
                    first = self._digest_owner(claim_key)
                    if first is not None:
                        raise DuplicateImage(sha256, first) from None
                    continue  # its record was deleted in between: claim the bytes again
                conflict = TRANSACTION_CONFLICT in (record_reason, claim_reason)
                if not conflict or attempt == CLAIM_ATTEMPTS:
                    raise
                # Another transaction held the claim's key: it will have decided by now.
                time.sleep(CLAIM_RETRY_SECONDS * attempt)
        raise RuntimeError(f"the bytes {sha256} were claimed and released {CLAIM_ATTEMPTS} times")

    def _digest_owner(self, claim_key: Item) -> str | None:
        """The id of the record that holds this claim on its bytes, if one does."""
        answer = self._client.get_item(
            TableName=self._index,
            Key=self._typed(claim_key),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return str(item["ImageId"]["S"]) if item else None

    def _claim_release(self, image_id: str, item: Item) -> list[dict[str, Any]]:
        """The delete of the record's claim on its bytes, if it holds it (records inserted
        without unique_bytes, or before claims existed, hold none)."""
        sha256 = item.get("Sha256")
        if not isinstance(sha256, str):
            return []
        claim_key = digest_claim_key(tenant_of(item), sha256)
        if self._digest_owner(claim_key) != image_id:
            return []
        return [
            {
                "Delete": {
                    "TableName": self._index,
                    "Key": self._typed(claim_key),
                    "ConditionExpression": "ImageId = :id",
                    "ExpressionAttributeValues": {":id": {"S": image_id}},
                }
            }
        ]

    def get(self, image_id: str) -> ImageRecord | None:
        item = self._item(image_id)
        return from_item(item) if item is not None else None

    def find_by_sha256(self, tenant: str, sha256: str) -> ImageRecord | None:
        """The tenant's record of these bytes: its claim names it; records without a claim
        (uploads, records older than claims) are found through the Sha256Index, whose
        entries of every tenant are read until one of `tenant` is (one a tenant at most,
        but for unclaimed uploads)."""
        owner = self._digest_owner(digest_claim_key(tenant, sha256))
        if owner is not None and (claimed := self.get(owner)) is not None:
            return claimed
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": SHA256_INDEX,
            "KeyConditionExpression": "Sha256 = :sha256",
            "ExpressionAttributeValues": {":sha256": {"S": sha256}},
        }
        while True:
            answer = self._client.query(**request)
            for key in answer.get("Items", []):
                record = self.get(key["Id"]["S"])
                if record is not None and record.tenant == tenant:
                    return record
            if "LastEvaluatedKey" not in answer:
                return None
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def reopen(self, image_id: str) -> ImageRecord | None:
        old = self._item(image_id)
        if old is None or old["Status"] == Status.NOT_CLASSIFIED.value:
            return None
        new = reopened(old)
        replace = {
            "Put": {
                "TableName": self._table,
                "Item": self._typed(new),
                "ConditionExpression": "#status = :seen",
                "ExpressionAttributeNames": {"#status": "Status"},
                "ExpressionAttributeValues": {":seen": {"S": old["Status"]}},
            }
        }
        if not self._transact([replace, *self._index_deletes(image_id, old)]):
            return None
        return from_item(new)

    def delete(self, image_id: str) -> bool:
        old = self._item(image_id)
        if old is None:
            return False
        remove = {
            "Delete": {
                "TableName": self._table,
                "Key": self._key(image_id),
                "ConditionExpression": "#status = :seen",
                "ExpressionAttributeNames": {"#status": "Status"},
                "ExpressionAttributeValues": {":seen": {"S": old["Status"]}},
            }
        }
        release = self._claim_release(image_id, old)
        if self._transact([remove, *self._index_deletes(image_id, old), *release]):
            return True
        return self.delete(image_id)  # it changed in between: read it again

    def record_delivery(self, image_id: str, webhook: WebhookState) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(image_id),
                UpdateExpression="SET Webhook = :webhook",
                ConditionExpression="attribute_exists(Id)",
                ExpressionAttributeValues=self._typed({":webhook": webhook_item(webhook)}),
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:  # deleted meanwhile: nothing to record
                raise

    def images_with_label(
        self, tenant: str, name: str, limit: int, after: str | None
    ) -> tuple[list[LabelHit], str | None]:
        key = tenant_label_key(tenant, name)
        request: dict[str, Any] = {
            "TableName": self._index,
            "KeyConditionExpression": "LabelKey = :key",
            "ExpressionAttributeValues": {":key": {"S": key}},
            "Limit": limit,
        }
        if after:
            request["ExclusiveStartKey"] = _start_key(after, key)
        answer = self._client.query(**request)
        hits = [
            LabelHit(image_id=item["ImageId"]["S"], score=float(item["Score"]["N"]))
            for item in answer.get("Items", [])
        ]
        last = answer.get("LastEvaluatedKey")
        return hits, _page_token(last) if last and hits else None

    def complete(
        self, image_id: str, labels: tuple[Label, ...], model: str, at: datetime, *, tenant: str
    ) -> bool:
        update = {"Update": self._finish_request(image_id, classified_changes(labels, model, at))}
        puts = [
            {"Put": {"TableName": self._index, "Item": self._typed(entry)}}
            for entry in index_entries(tenant, image_id, labels)
        ]
        return self._transact([update, *puts])

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
            if error_code(error) == CONDITION_FAILED:
                return 0
            raise
        return int(answer["Attributes"]["Attempts"]["N"])

    def _finish(self, image_id: str, changes: Item) -> bool:
        try:
            self._client.update_item(**self._finish_request(image_id, changes))
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return False
            raise
        return True

    def _finish_request(self, image_id: str, changes: Item) -> dict[str, Any]:
        """A conditional update setting `changes` on a record still NOT_CLASSIFIED."""
        names = {f"#a{index}": name for index, name in enumerate(changes)}
        values = {f":v{index}": value for index, value in enumerate(changes.values())}
        assignments = ", ".join(
            f"{name} = {value}" for name, value in zip(names, values, strict=True)
        )
        return {
            "TableName": self._table,
            "Key": self._key(image_id),
            "UpdateExpression": f"SET {assignments}",
            "ConditionExpression": "#status = :pending",
            "ExpressionAttributeNames": {**names, "#status": "Status"},
            "ExpressionAttributeValues": {
                **self._typed(values),
                ":pending": {"S": Status.NOT_CLASSIFIED.value},
            },
        }

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """Run the writes as one transaction; False if a condition did not hold."""
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error_code(error) == TRANSACTION_CANCELLED and _condition_failed(error):
                return False
            raise
        return True

    def _index_deletes(self, image_id: str, item: Item) -> list[dict[str, Any]]:
        labels = labels_from_item(item.get("Labels", []))
        return [
            {"Delete": {"TableName": self._index, "Key": self._typed(_index_key(entry))}}
            for entry in index_entries(tenant_of(item), image_id, labels)
        ]

    def _item(self, image_id: str) -> Item | None:
        answer = self._client.get_item(
            TableName=self._table, Key=self._key(image_id), ConsistentRead=True
        )
        if "Item" not in answer:
            return None
        plain = {
            name: self._deserializer.deserialize(value) for name, value in answer["Item"].items()
        }
        return dict(plain_numbers(plain))

    def _key(self, image_id: str) -> dict[str, Any]:
        return {"Id": {"S": image_id}}

    def _typed(self, item: Item) -> dict[str, Any]:
        return {
            name: self._serializer.serialize(value) for name, value in with_decimals(item).items()
        }


def _index_key(entry: Item) -> Item:
    return {"LabelKey": entry["LabelKey"], "Rank": entry["Rank"]}


def _page_token(last_key: dict[str, Any]) -> str:
    plain = {"LabelKey": last_key["LabelKey"]["S"], "Rank": last_key["Rank"]["S"]}
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode()


def _start_key(token: str, expected_label: str) -> dict[str, Any]:
    try:
        plain = loads_json(base64.urlsafe_b64decode(token.encode()))
        key = {"LabelKey": {"S": str(plain["LabelKey"])}, "Rank": {"S": str(plain["Rank"])}}
    except (ValueError, TypeError, KeyError, UnicodeError):
        raise InvalidPageToken("`next_token` is not a token this service made") from None
    if plain["LabelKey"] != expected_label:
        raise InvalidPageToken("`next_token` belongs to another label")
    return key


def _condition_failed(error: ClientError) -> bool:
    reasons = error.response.get("CancellationReasons", [])
    return any(reason.get("Code") == CHECK_FAILED for reason in reasons)
