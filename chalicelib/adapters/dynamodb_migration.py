"""Issue 15's migration of a deployed stage's tables to tenants: `imagelabeller migrate`.

Before tenancy a record had no `Tenant`, a search entry's `LabelKey` was the bare label key
and a byte claim's was `SHA256#<hex>`. The service now reads and writes only
`<tenant>#<label key>` and `SHA256#<tenant>#<hex>`, and every record made before belongs to
the tenant `legacy`. This
- writes `Tenant = legacy` on each record without one: one conditional UpdateItem, which
  the stream sees as a MODIFY whose Status does not change, so nothing is labelled again
  (events/stream.py);
- moves each old search entry to `legacy#<key>` and each old claim to
  `SHA256#legacy#<hex>`, every attribute kept: one transaction per item puts the new item
  and deletes the old one, so an interrupted run leaves each item in one place or the
  other, never both or neither.

Every write is conditional on what the scan saw, so a second run (or one that meets the
service's own writes) finds nothing to do and changes nothing. Any other item of the
search table (API keys, quotas, the new formats) is never written.

A move also checks the item's record, in the same transaction: it must exist, be
`legacy`'s (or have no tenant yet) and, for a search entry, be CLASSIFIED. An old item
that fails the check belongs to no image any more (the record was deleted or sent to be
labelled again by the new code, which looks only for new-format items), so it is left
where it is, and counted: no search or claim ever reads it there.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_errors import (
    CHECK_FAILED,
    CONDITION_FAILED,
    TRANSACTION_CANCELLED,
    error_code,
    reason_codes,
)
from chalicelib.adapters.items import digest_claim_key
from chalicelib.domain.models import LEGACY_TENANT, Status

API_KEYS_PARTITION = "APIKEY"  # dynamodb_keys.KEYS_PARTITION
OLD_CLAIM = re.compile(r"SHA256#([0-9a-f]{64})")  # fullmatch: no "\n" after it either

# Cancellation reasons worth another try: another transaction held one of the keys, or the
# table was busy.
PASSING_REASONS = frozenset({"TransactionConflict", "ThrottlingError"})
MOVE_ATTEMPTS = 5
MOVE_RETRY_SECONDS = 0.05
# _move's answer when the item moved; its others are the report's count names.
MOVED = "moved"
GONE = "old_items_gone"


@dataclass(frozen=True)
class MigrationReport:
    """What a run did; in a dry run, what it would do (a dry run reads no records for the
    moves' checks, so it counts every old item as moved)."""

    dry_run: bool
    # ImageLabels
    records_tagged: int  # given Tenant = legacy
    records_skipped: int  # changed between the scan and the write: tagged meanwhile, deleted
    records_left: int  # had a tenant already
    # ImageLabelIndex
    entries_moved: int  # old search entries now under legacy#<key>
    claims_moved: int  # old byte claims now under SHA256#legacy#<hex>
    old_items_dropped: int  # old items whose new-format twin existed: the old one deleted
    old_items_gone: int  # old items deleted by someone else between the scan and the move
    orphans_left: int  # old items whose record is gone or no longer theirs: left as they are

    @property
    def changes(self) -> int:
        """The writes that changed something: 0 when the tables were migrated already."""
        return self.records_tagged + self.entries_moved + self.claims_moved + self.old_items_dropped


Tally = Counter[str]  # MigrationReport's counts by name


def migrate_to_tenants(
    client: Any, table: str, index_table: str, dry_run: bool = False
) -> MigrationReport:
    """Give every record of `table` a tenant and move `index_table`'s old-format items to
    the `legacy` tenant's keys (the module's docstring says how). `client` is a boto3
    DynamoDB client; a failed AWS call raises its ClientError or BotoCoreError, and running
    the migration again finishes the work."""
    tally: Tally = Counter()
    _tag_records(client, table, tally, dry_run)
    _move_index_items(client, table, index_table, tally, dry_run)
    return MigrationReport(
        dry_run=dry_run,
        records_tagged=tally["records_tagged"],
        records_skipped=tally["records_skipped"],
        records_left=tally["records_left"],
        entries_moved=tally["entries_moved"],
        claims_moved=tally["claims_moved"],
        old_items_dropped=tally["old_items_dropped"],
        old_items_gone=tally["old_items_gone"],
        orphans_left=tally["orphans_left"],
    )


def old_search_key(label_key: str) -> bool:
    """A search entry's `LabelKey` as it was before tenancy: a case-folded label name, which
    has no "#" (every key with one is a tenant's, or a claim's or a quota's)."""
    return (
        bool(label_key)
        and "#" not in label_key
        and label_key == label_key.casefold()
        and label_key != API_KEYS_PARTITION
    )


def legacy_key(old_label_key: str) -> str | None:
    """Where an old-format item of the search table moves; None if the key is not one
    (then the item is never written)."""
    claim = OLD_CLAIM.fullmatch(old_label_key)
    if claim:
        return str(digest_claim_key(LEGACY_TENANT, claim[1])["LabelKey"])
    if old_search_key(old_label_key):
        # items.tenant_label_key(LEGACY_TENANT, name), with the stored key kept as it is.
        return f"{LEGACY_TENANT}#{old_label_key}"
    return None


def _tag_records(client: Any, table: str, tally: Tally, dry_run: bool) -> None:
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        ProjectionExpression="#id, #tenant",
        ExpressionAttributeNames={"#id": "Id", "#tenant": "Tenant"},
        ConsistentRead=True,
    )
    for page in pages:
        for item in page.get("Items", []):
            if "Tenant" in item:
                tally["records_left"] += 1
            elif dry_run or _tag(client, table, item["Id"]):
                tally["records_tagged"] += 1
            else:
                tally["records_skipped"] += 1


def _tag(client: Any, table: str, image_id: dict[str, Any]) -> bool:
    """Tenant = legacy on a record still without one; False if it has one now or is gone."""
    try:
        client.update_item(
            TableName=table,
            Key={"Id": image_id},
            UpdateExpression="SET #tenant = :legacy",
            ConditionExpression="attribute_exists(Id) AND attribute_not_exists(#tenant)",
            ExpressionAttributeNames={"#tenant": "Tenant"},
            ExpressionAttributeValues={":legacy": {"S": LEGACY_TENANT}},
        )
    except ClientError as error:
        if error_code(error) == CONDITION_FAILED:
            return False
        raise
    return True


def _move_index_items(
    client: Any, table: str, index_table: str, tally: Tally, dry_run: bool
) -> None:
    # The filter only spares the transfer of the many new-format search entries; each key
    # it lets through is checked again, strictly, by legacy_key().
    pages = client.get_paginator("scan").paginate(
        TableName=index_table,
        FilterExpression="NOT contains(LabelKey, :hash) OR begins_with(LabelKey, :claim)",
        ExpressionAttributeValues={":hash": {"S": "#"}, ":claim": {"S": "SHA256#"}},
        ConsistentRead=True,
    )
    for page in pages:
        for item in page.get("Items", []):
            new_key = legacy_key(item["LabelKey"]["S"])
            if new_key is None or "S" not in item.get("ImageId", {}):
                continue  # not an old-format item (or not one the service wrote): never written
            outcome = MOVED if dry_run else _move(client, table, index_table, item, new_key)
            if outcome == MOVED:
                outcome = "claims_moved" if _is_claim(new_key) else "entries_moved"
            tally[outcome] += 1


def _move(client: Any, table: str, index_table: str, item: dict[str, Any], new_key: str) -> str:
    """Put the item under `new_key` and delete it under its old one, in one transaction.
    What happened, as the report's count: MOVED; else old_items_dropped if the new one
    existed (the old one is then deleted alone), old_items_gone if the old one was deleted
    meanwhile, orphans_left if its record fails the check (nothing is written)."""
    old_key = {"LabelKey": item["LabelKey"], "Rank": item["Rank"]}
    writes = [
        {
            "Put": {
                "TableName": index_table,
                "Item": {**item, "LabelKey": {"S": new_key}},
                "ConditionExpression": "attribute_not_exists(LabelKey)",
            }
        },
        {
            "Delete": {
                "TableName": index_table,
                "Key": old_key,
                "ConditionExpression": "attribute_exists(LabelKey)",
            }
        },
        {"ConditionCheck": _record_check(table, item, claim=_is_claim(new_key))},
    ]
    for attempt in range(1, MOVE_ATTEMPTS + 1):
        try:
            client.transact_write_items(TransactItems=writes)
            return MOVED
        except ClientError as error:
            if error_code(error) != TRANSACTION_CANCELLED:
                raise
            put, delete, record = reason_codes(error, 3)
            if put == CHECK_FAILED:
                return "old_items_dropped" if _delete(client, index_table, old_key) else GONE
            if delete == CHECK_FAILED:
                return GONE
            if record == CHECK_FAILED:
                return "orphans_left"
            if not PASSING_REASONS & {put, delete, record} or attempt == MOVE_ATTEMPTS:
                raise
            time.sleep(MOVE_RETRY_SECONDS * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _is_claim(label_key: str) -> bool:
    return label_key.startswith("SHA256#")


def _record_check(table: str, item: dict[str, Any], claim: bool) -> dict[str, Any]:
    """The condition on the item's record: it exists and is `legacy`'s (or has no tenant
    yet); a search entry's is CLASSIFIED too, as a record with search entries always is."""
    condition = "attribute_exists(Id) AND (attribute_not_exists(#tenant) OR #tenant = :legacy)"
    names = {"#tenant": "Tenant"}
    values = {":legacy": {"S": LEGACY_TENANT}}
    if not claim:
        condition += " AND #status = :classified"
        names["#status"] = "Status"
        values[":classified"] = {"S": Status.CLASSIFIED.value}
    return {
        "TableName": table,
        "Key": {"Id": item["ImageId"]},
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _delete(client: Any, index_table: str, key: dict[str, Any]) -> bool:
    """Delete the old item; False if it was gone already."""
    try:
        client.delete_item(
            TableName=index_table, Key=key, ConditionExpression="attribute_exists(LabelKey)"
        )
    except ClientError as error:
        if error_code(error) == CONDITION_FAILED:
            return False
        raise
    return True
