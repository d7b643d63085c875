"""KeyStore on items of the search table `ImageLabelIndex`: one item per key, partition
`LabelKey = "APIKEY"`, sort key `Rank = <key id>`.

Why that table, and not a table of its own: the API function may already GetItem and
PutItem there (.chalice/policy-api.json, ClaimTheBytesOfSubmittedImages), and checking a
key needs one GetItem only; a new table would be one more stack resource, one more
deployer permission and one more grant in each policy, for a few hundred items. The
`LabelKey` is upper case, which label_key() (case-folded) never makes, so no search reads
these items, as with the byte claims (items.digest_claim_key).

Why one partition, and not one per key: `keys list` is then a Query of that partition
instead of a Scan of every label entry of every image. Its reads are one GetItem per
checked request (the check has no cache: a revoked key is refused at once), well inside
one partition's 3,000 reads a second.

Revoking and creating are conditional writes: a second revoke changes nothing, and a new
key never replaces one with the same id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_errors import CONDITION_FAILED, error_code
from chalicelib.domain.api_keys import ApiKeyRecord, DuplicateKeyId

KEYS_PARTITION = "APIKEY"


class DynamoDBKeyStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put_new(self, record: ApiKeyRecord) -> None:
        item = {
            **_key(record.key_id),
            "Tenant": {"S": record.tenant},
            "SecretHash": {"S": record.secret_hash},
            "CreatedAt": {"S": record.created_at.isoformat()},
        }
        if record.revoked_at is not None:
            item["RevokedAt"] = {"S": record.revoked_at.isoformat()}
        if record.label is not None:
            item["Label"] = {"S": record.label}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(LabelKey)",
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                raise DuplicateKeyId(record.key_id) from None
            raise

    def get(self, key_id: str) -> ApiKeyRecord | None:
        # Consistent: a key revoked a moment ago must not pass.
        answer = self._client.get_item(TableName=self._table, Key=_key(key_id), ConsistentRead=True)
        item = answer.get("Item")
        return _record(item) if item else None

    def list(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "LabelKey = :keys",
            "ExpressionAttributeValues": {":keys": {"S": KEYS_PARTITION}},
            "ConsistentRead": True,
        }
        if tenant is not None:
            query["FilterExpression"] = "Tenant = :tenant"
            query["ExpressionAttributeValues"][":tenant"] = {"S": tenant}
        records: list[ApiKeyRecord] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(**query):
            records.extend(_record(item) for item in page.get("Items", []))
        return sorted(records, key=lambda record: (record.created_at, record.key_id))

    def revoke(self, key_id: str, at: datetime) -> ApiKeyRecord | None:
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=_key(key_id),
                UpdateExpression="SET RevokedAt = :at",
                ConditionExpression=(
                    "attribute_exists(LabelKey) AND attribute_not_exists(RevokedAt)"
                ),
                ExpressionAttributeValues={":at": {"S": at.isoformat()}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return self.get(key_id)  # revoked already, or no such key
            raise
        return _record(answer["Attributes"])


def _key(key_id: str) -> dict[str, Any]:
    return {"LabelKey": {"S": KEYS_PARTITION}, "Rank": {"S": key_id}}


def _record(item: dict[str, Any]) -> ApiKeyRecord:
    revoked_at = item.get("RevokedAt", {}).get("S")
    return ApiKeyRecord(
        key_id=item["Rank"]["S"],
        tenant=item["Tenant"]["S"],
        secret_hash=item["SecretHash"]["S"],
        created_at=datetime.fromisoformat(item["CreatedAt"]["S"]),
        revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
        label=item.get("Label", {}).get("S"),
    )
