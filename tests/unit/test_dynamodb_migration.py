"""Issue 15's migration of a stage's tables to tenants (adapters/dynamodb_migration.py), on
moto: tables written as the service wrote them before records had tenants, migrated."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb import DynamoDBLabelTable
from chalicelib.adapters.dynamodb_migration import (
    MigrationReport,
    legacy_key,
    migrate_to_tenants,
)
from chalicelib.domain.errors import DuplicateImage
from chalicelib.domain.models import ImageInfo, ImageRecord, LabelHit, Status, utc_now
from chalicelib.events.stream import image_ids_to_label
from chalicelib.local.dynamodb_streams import DynamoDBStreamSource
from tests.fixtures.aws import LABEL_INDEX_TABLE, REGION, TABLE, ConflictingClient

Item = dict[str, Any]

SHA_CAT, SHA_PENDING, SHA_BROKEN, SHA_ACME = ("a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32)
CAT, PENDING, BROKEN, ACME = ("3f2c-cat", "77aa-pending", "9e1d-broken", "c0de-acme")

# The cancellation reasons of a transaction that met a concurrent one.
MOVE_CONFLICT = ["TransactionConflict", "None", "None"]  # new item, old, record


def old_record(image_id: str, status: str, sha256: str, labels: Any = ()) -> Item:
    """A record as the service wrote it before tenancy: no `Tenant`."""
    item: Item = {
        "Id": image_id,
        "Status": status,
        "Label": ", ".join(name for name, _ in labels) or status,
        "SubmittedAt": "2026-01-02T03:04:05+00:00",
        "Attempts": 1,
        "Image": {
            "Format": "JPEG",
            "Width": 640,
            "Height": 480,
            "SizeBytes": 12345,
            "Sha256": sha256,
        },
        "Sha256": sha256,
        "SourceUrl": "https://example.com/a.jpg",
    }
    if labels:
        item["Labels"] = [{"Name": name, "Score": Decimal(score)} for name, score in labels]
        item["Model"] = "efficientnet-lite0/onnx"
        item["LabelledAt"] = "2026-01-02T03:04:09+00:00"
    return item


def search_entry(label_key: str, image_id: str, name: str, score: str) -> Item:
    rank = f"{1 - Decimal(score):.9f}#{image_id}"
    return {
        "LabelKey": label_key,
        "Rank": rank,
        "ImageId": image_id,
        "Name": name,
        "Score": Decimal(score),
    }


def claim(label_key: str, image_id: str) -> Item:
    return {"LabelKey": label_key, "Rank": "IMAGE", "ImageId": image_id}


def under(label_key: str, item: Item) -> Item:
    return {**item, "LabelKey": label_key}


OLD_RECORDS = [
    old_record(CAT, "CLASSIFIED", SHA_CAT, [("tabby", "0.9"), ("Egyptian cat", "0.05")]),
    old_record(PENDING, "NOT_CLASSIFIED", SHA_PENDING),
    old_record(BROKEN, "FAILED", SHA_BROKEN),
]
ACME_RECORD = {**old_record(ACME, "CLASSIFIED", SHA_ACME, [("tabby", "0.8")]), "Tenant": "acme"}
OLD_ENTRIES = [
    search_entry("tabby", CAT, "tabby", "0.9"),
    search_entry("egyptian cat", CAT, "Egyptian cat", "0.05"),
]
OLD_CLAIMS = [claim(f"SHA256#{SHA_CAT}", CAT), claim(f"SHA256#{SHA_PENDING}", PENDING)]
# An old claim whose new-format twin the new code wrote already.
OLD_TWIN = claim(f"SHA256#{SHA_BROKEN}", BROKEN)
NEW_TWIN = claim(f"SHA256#legacy#{SHA_BROKEN}", BROKEN)
# Items the migration must never write.
UNTOUCHABLE = [
    search_entry("acme#tabby", ACME, "tabby", "0.8"),
    claim(f"SHA256#acme#{SHA_ACME}", ACME),
    NEW_TWIN,
    {
        "LabelKey": "APIKEY",
        "Rank": "0123456789abcdef",
        "Tenant": "acme",
        "SecretHash": "e3" * 32,
        "CreatedAt": "2026-01-01T00:00:00+00:00",
    },
    {"LabelKey": "RATE#0123456789abcdef", "Rank": "BUCKET", "Tokens": Decimal("599.5")},
    {"LabelKey": "IMAGES#0123456789abcdef", "Rank": "2026-01-02", "Count": Decimal(7)},
]

MIGRATED_RECORDS = [*({**record, "Tenant": "legacy"} for record in OLD_RECORDS), ACME_RECORD]
# Each old item and where it moves.
MOVES = [
    *((entry, under(f"legacy#{entry['LabelKey']}", entry)) for entry in OLD_ENTRIES),
    (OLD_CLAIMS[0], under(f"SHA256#legacy#{SHA_CAT}", OLD_CLAIMS[0])),
    (OLD_CLAIMS[1], under(f"SHA256#legacy#{SHA_PENDING}", OLD_CLAIMS[1])),
]
MIGRATED_INDEX = [*(new for _, new in MOVES), *UNTOUCHABLE]
# What the seed's migration does: 3 records tagged, 4 items moved, 1 old twin dropped.
REPORT = MigrationReport(
    dry_run=False,
    records_tagged=3,
    records_skipped=0,
    records_left=1,
    entries_moved=2,
    claims_moved=2,
    old_items_dropped=1,
    old_items_gone=0,
    orphans_left=0,
)
# Its calls that write: 3 UpdateItem, 4 transactions, the twin's cancelled one, 1 DeleteItem.
WRITES_OF_A_FULL_RUN = 9

SERIALIZER, DESERIALIZER = TypeSerializer(), TypeDeserializer()


def put(client: Any, table: str, *items: Item) -> None:
    for item in items:
        typed = {name: SERIALIZER.serialize(value) for name, value in item.items()}
        client.put_item(TableName=table, Item=typed)


def seed(client: Any) -> None:
    """Both tables as a stage left them before tenancy, with an acme record and an API key
    and quota items written since, and one old claim already written anew."""
    put(client, TABLE, *OLD_RECORDS, ACME_RECORD)
    put(client, LABEL_INDEX_TABLE, *OLD_ENTRIES, *OLD_CLAIMS, OLD_TWIN, *UNTOUCHABLE)


def records(client: Any) -> dict[str, Item]:
    return {item["Id"]: item for item in _scan(client, TABLE)}


def index(client: Any) -> dict[tuple[str, str], Item]:
    return {(item["LabelKey"], item["Rank"]): item for item in _scan(client, LABEL_INDEX_TABLE)}


def _scan(client: Any, table: str) -> list[Item]:
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [
        {name: DESERIALIZER.deserialize(value) for name, value in item.items()}
        for page in pages
        for item in page["Items"]
    ]


def keyed(items: list[Item]) -> dict[tuple[str, str], Item]:
    return {(item["LabelKey"], item["Rank"]): item for item in items}


def migrate(client: Any, dry_run: bool = False) -> MigrationReport:
    return migrate_to_tenants(client, TABLE, LABEL_INDEX_TABLE, dry_run=dry_run)


@pytest.fixture
def seeded(dynamodb_client: Any) -> Any:
    seed(dynamodb_client)
    return dynamodb_client


# --- which keys are old ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "moves_to"),
    [
        ("tabby", "legacy#tabby"),
        ("egyptian cat", "legacy#egyptian cat"),
        ("apikey", "legacy#apikey"),  # a label may be called that; the partition is upper case
        (f"SHA256#{SHA_CAT}", f"SHA256#legacy#{SHA_CAT}"),
        ("APIKEY", None),
        ("Tabby", None),
        ("acme#tabby", None),
        ("legacy#tabby", None),
        ("RATE#0123456789abcdef", None),
        ("IMAGES#0123456789abcdef", None),
        ("QUOTA", None),
        (f"SHA256#legacy#{SHA_CAT}", None),
        (f"SHA256#{SHA_CAT.upper()}", None),
        (f"SHA256#{SHA_CAT[:-2]}", None),
        (f"SHA256#{SHA_CAT}\n", None),
        ("", None),
    ],
)
def test_only_keys_the_service_wrote_before_tenancy_move(key: str, moves_to: str | None) -> None:
    assert legacy_key(key) == moves_to


# --- a run --------------------------------------------------------------------------------


def test_records_without_a_tenant_become_legacy_and_keep_everything_else(seeded: Any) -> None:
    report = migrate(seeded)

    assert records(seeded) == {record["Id"]: record for record in MIGRATED_RECORDS}
    assert (report.records_tagged, report.records_left) == (3, 1)


def test_a_record_with_a_tenant_is_not_written(seeded: Any) -> None:
    migrate(seeded)
    assert records(seeded)[ACME] == ACME_RECORD


def test_old_entries_and_claims_move_under_legacy_with_every_attribute(seeded: Any) -> None:
    report = migrate(seeded)

    assert index(seeded) == keyed(MIGRATED_INDEX)
    assert report == REPORT


def test_keys_quotas_and_new_format_items_are_never_written(seeded: Any) -> None:
    migrate(seeded)
    after = index(seeded)
    for key, item in keyed(UNTOUCHABLE).items():
        assert after[key] == item


def test_an_old_item_whose_new_twin_exists_is_deleted_and_the_twin_kept(seeded: Any) -> None:
    report = migrate(seeded)

    after = index(seeded)
    assert (OLD_TWIN["LabelKey"], "IMAGE") not in after
    assert after[(NEW_TWIN["LabelKey"], "IMAGE")] == NEW_TWIN
    assert report.old_items_dropped == 1


def test_a_second_run_reports_no_changes_and_changes_nothing(seeded: Any) -> None:
    migrate(seeded)
    before = records(seeded), index(seeded)

    again = migrate(seeded)

    assert (records(seeded), index(seeded)) == before
    assert again.changes == 0
    assert again == MigrationReport(
        dry_run=False,
        records_tagged=0,
        records_skipped=0,
        records_left=4,
        entries_moved=0,
        claims_moved=0,
        old_items_dropped=0,
        old_items_gone=0,
        orphans_left=0,
    )


def test_a_dry_run_counts_what_a_run_would_do_and_writes_nothing(seeded: Any) -> None:
    before = records(seeded), index(seeded)

    report = migrate(seeded, dry_run=True)

    assert (records(seeded), index(seeded)) == before
    assert report.dry_run
    assert (report.records_tagged, report.records_left) == (3, 1)
    # A dry run does not look for twins: the old twin counts as a claim to move.
    assert (report.entries_moved, report.claims_moved) == (2, 3)


def test_a_dry_run_of_migrated_tables_reports_nothing_to_do(seeded: Any) -> None:
    migrate(seeded)
    assert migrate(seeded, dry_run=True).changes == 0


def test_old_items_whose_record_is_gone_or_no_longer_theirs_are_left_where_they_are(
    dynamodb_client: Any,
) -> None:
    """Items the new code could orphan before the migration reaches them: it deletes or
    reopens a legacy record looking only for new-format items. Moved, they would show a
    search hit of no image, or refuse new bytes as a duplicate of none."""
    reopened = old_record(PENDING, "NOT_CLASSIFIED", SHA_PENDING)
    put(dynamodb_client, TABLE, reopened, ACME_RECORD)
    orphans = [
        search_entry("teapot", "5a5a-deleted", "teapot", "0.7"),  # no such record
        search_entry("pug", PENDING, "pug", "0.6"),  # its record is pending again
        search_entry("tabby", ACME, "tabby", "0.8"),  # acme's record: never legacy's
        claim(f"SHA256#{SHA_CAT}", "5a5a-deleted"),
        claim(f"SHA256#{SHA_ACME}", ACME),
    ]
    put(dynamodb_client, LABEL_INDEX_TABLE, *orphans)

    report = migrate(dynamodb_client)
    again = migrate(dynamodb_client)

    assert index(dynamodb_client) == keyed(orphans)
    assert report.orphans_left == again.orphans_left == 5
    assert report.entries_moved + report.claims_moved + again.changes == 0


def test_a_move_that_meets_a_concurrent_transaction_tries_again(seeded: Any) -> None:
    migrate(ConflictingClient(seeded, conflicts=2, reasons=MOVE_CONFLICT))
    assert index(seeded) == keyed(MIGRATED_INDEX)


def test_a_move_that_keeps_meeting_conflicts_gives_up_and_loses_nothing(seeded: Any) -> None:
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        migrate(ConflictingClient(seeded, conflicts=99, reasons=MOVE_CONFLICT))

    migrate(seeded)
    assert index(seeded) == keyed(MIGRATED_INDEX)


# --- interrupted ---------------------------------------------------------------------------


class Interrupted(Exception):
    pass


class InterruptedClient:
    """A DynamoDB client that stops the run at its `stop_at`th call that writes: before
    the call reaches the table, or after it did (its answer lost)."""

    WRITES = frozenset({"update_item", "transact_write_items", "delete_item", "put_item"})

    def __init__(self, inner: Any, stop_at: int | None = None, after: bool = False) -> None:
        self.inner = inner
        self.stop_at = stop_at
        self.after = after
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.inner, name)
        if name not in self.WRITES:
            return call

        def write(**request: Any) -> Any:
            self.writes += 1
            if self.writes != self.stop_at:
                return call(**request)
            if self.after:
                with contextlib.suppress(ClientError):
                    call(**request)
            raise Interrupted(f"stopped at write {self.writes}")

        return write


def test_a_full_run_makes_the_writes_the_interruption_test_stops_at(seeded: Any) -> None:
    client = InterruptedClient(seeded)
    migrate(client)
    assert client.writes == WRITES_OF_A_FULL_RUN


@pytest.mark.parametrize("after", [False, True], ids=["before-the-write", "answer-lost"])
@pytest.mark.parametrize("stop_at", range(1, WRITES_OF_A_FULL_RUN + 1))
def test_a_run_stopped_at_any_write_loses_nothing_and_a_second_run_completes_it(
    seeded: Any, stop_at: int, after: bool
) -> None:
    with pytest.raises(Interrupted):
        migrate(InterruptedClient(seeded, stop_at, after))

    halfway = index(seeded)
    for old, new in MOVES:  # in one place: not both, not neither
        here = [halfway.get((item["LabelKey"], item["Rank"])) for item in (old, new)]
        assert here in ([old, None], [None, new]), f"{old['LabelKey']} is in {here}"
    assert halfway[(NEW_TWIN["LabelKey"], "IMAGE")] == NEW_TWIN

    second = migrate(seeded)

    assert records(seeded) == {record["Id"]: record for record in MIGRATED_RECORDS}
    assert index(seeded) == keyed(MIGRATED_INDEX)
    assert second.records_skipped + second.old_items_gone + second.orphans_left == 0
    assert migrate(seeded).changes == 0


# --- the stream ----------------------------------------------------------------------------


def test_tagging_records_asks_the_stream_to_label_none_of_them(dynamodb_client: Any) -> None:
    """Tenant on a NOT_CLASSIFIED record is a MODIFY whose Status stays NOT_CLASSIFIED,
    which the handler does not take for a relabel (nor does the function's filter, which
    tests/infrastructure/test_stream_mapping.py holds to the handler's rule)."""
    arn = dynamodb_client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    stream = DynamoDBStreamSource(boto3.client("dynamodbstreams", region_name=REGION), arn)
    put(dynamodb_client, TABLE, *OLD_RECORDS)
    inserts = stream.read(100)
    stream.acknowledge(inserts)

    migrate(dynamodb_client)
    modifies = stream.read(100).records

    assert len(inserts.records) == len(OLD_RECORDS)
    assert [record["eventName"] for record in modifies] == ["MODIFY"] * len(OLD_RECORDS)
    pending = next(r for r in modifies if r["dynamodb"]["Keys"]["Id"]["S"] == PENDING)
    assert pending["dynamodb"]["OldImage"]["Status"] == {"S": "NOT_CLASSIFIED"}
    assert pending["dynamodb"]["NewImage"]["Tenant"] == {"S": "legacy"}
    assert image_ids_to_label(modifies) == []


# --- what the service finds afterwards -----------------------------------------------------


def record_of(tenant: str, sha256: str) -> ImageRecord:
    info = ImageInfo("JPEG", 640, 480, 12345, sha256)
    return ImageRecord(f"new-{tenant}", Status.NOT_CLASSIFIED, info, utc_now(), tenant=tenant)


def test_the_service_finds_migrated_entries_and_claims_under_legacy(seeded: Any) -> None:
    migrate(seeded)
    table = DynamoDBLabelTable(seeded, TABLE, LABEL_INDEX_TABLE)

    assert table.images_with_label("legacy", "Tabby", 10, None) == ([LabelHit(CAT, 0.9)], None)
    assert table.images_with_label("legacy", "egyptian  cat", 10, None)[0] == [LabelHit(CAT, 0.05)]
    assert table.images_with_label("acme", "tabby", 10, None)[0] == [LabelHit(ACME, 0.8)]
    found = table.find_by_sha256("legacy", SHA_PENDING)
    assert found is not None and (found.image_id, found.tenant) == (PENDING, "legacy")
    assert table.find_by_sha256("acme", SHA_PENDING) is None


def test_a_migrated_claim_refuses_legacy_duplicates_and_only_theirs(seeded: Any) -> None:
    migrate(seeded)
    table = DynamoDBLabelTable(seeded, TABLE, LABEL_INDEX_TABLE)

    with pytest.raises(DuplicateImage) as refused:
        table.insert(record_of("legacy", SHA_CAT))
    table.insert(record_of("acme", SHA_CAT))

    assert refused.value.image_id == CAT


def test_deleting_a_migrated_record_takes_its_migrated_entries_and_claim(seeded: Any) -> None:
    migrate(seeded)
    table = DynamoDBLabelTable(seeded, TABLE, LABEL_INDEX_TABLE)

    assert table.delete(CAT)

    assert table.images_with_label("legacy", "tabby", 10, None) == ([], None)
    assert not any(item.get("ImageId") == CAT for item in index(seeded).values())
