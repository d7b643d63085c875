"""A local database made before tenancy opens with its data moved to the legacy tenant:
records, search entries and byte claims, nothing lost, once."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib.adapters.items import to_item
from chalicelib.adapters.sqlite import SCHEMA, SqliteDatabase, SqliteLabelTable
from chalicelib.adapters.sqlite_migrations import schema_version
from chalicelib.domain.errors import DuplicateImage
from chalicelib.domain.models import (
    LEGACY_TENANT,
    ImageInfo,
    ImageRecord,
    Label,
    Status,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def old_item(record: ImageRecord) -> dict[str, object]:
    """The item as written before records had tenants: no Tenant attribute."""
    item = to_item(record)
    del item["Tenant"]
    return item


@pytest.fixture
def old_database(tmp_path: Path) -> tuple[Path, ImageRecord, ImageRecord]:
    """A database file as the service left it before tenancy: one CLASSIFIED record with
    its search entry and its claim on its bytes, one pending record."""
    path = tmp_path / "imagelabeller.sqlite3"
    classified = ImageRecord(
        image_id=str(uuid.uuid4()),
        status=Status.CLASSIFIED,
        image=ImageInfo("PNG", 64, 48, 900, "ab" * 32),
        submitted_at=T0,
        labels=(Label("espresso", 0.9),),
        model="m",
        labelled_at=T0,
    )
    pending = ImageRecord(
        image_id=str(uuid.uuid4()),
        status=Status.NOT_CLASSIFIED,
        image=ImageInfo("PNG", 64, 48, 900, "cd" * 32),
        submitted_at=T0,
    )
    connection = sqlite3.connect(path)
    connection.executescript(SCHEMA)
    for record in (classified, pending):
        connection.execute(
            "INSERT INTO images (id, status, item) VALUES (?, ?, ?)",
            (record.image_id, record.status.value, json.dumps(old_item(record))),
        )
        connection.execute(
            "INSERT INTO image_digests (sha256, image_id) VALUES (?, ?)",
            (record.image.sha256, record.image_id),
        )
    connection.execute(
        "INSERT INTO label_index (label_key, image_id, score) VALUES ('espresso', ?, 0.9)",
        (classified.image_id,),
    )
    connection.commit()
    connection.close()
    return path, classified, pending


def test_old_records_belong_to_the_legacy_tenant_after_opening(
    old_database: tuple[Path, ImageRecord, ImageRecord],
) -> None:
    path, classified, pending = old_database
    table = SqliteLabelTable(SqliteDatabase(path))
    assert table.get(classified.image_id) == classified
    assert table.get(pending.image_id) == pending
    assert classified.tenant == LEGACY_TENANT
    rows = SqliteDatabase(path).query("SELECT json_extract(item, '$.Tenant') FROM images")
    assert {row[0] for row in rows} == {LEGACY_TENANT}


def test_old_search_entries_and_claims_become_the_legacy_tenants(
    old_database: tuple[Path, ImageRecord, ImageRecord],
) -> None:
    path, classified, pending = old_database
    table = SqliteLabelTable(SqliteDatabase(path))
    hits, _ = table.images_with_label(LEGACY_TENANT, "espresso", 10, None)
    assert [hit.image_id for hit in hits] == [classified.image_id]
    assert table.images_with_label("acme", "espresso", 10, None) == ([], None)
    found = table.find_by_sha256(LEGACY_TENANT, pending.image.sha256)
    assert found is not None and found.image_id == pending.image_id
    with pytest.raises(DuplicateImage):
        table.insert(ImageRecord(str(uuid.uuid4()), Status.NOT_CLASSIFIED, pending.image, T0))
    # Another tenant's record of the same bytes is its own.
    table.insert(
        ImageRecord(str(uuid.uuid4()), Status.NOT_CLASSIFIED, pending.image, T0, tenant="acme")
    )


def test_the_migration_runs_once_and_leaves_new_data_alone(
    old_database: tuple[Path, ImageRecord, ImageRecord],
) -> None:
    path, classified, _ = old_database
    first = SqliteDatabase(path)
    table = SqliteLabelTable(first)
    mine = ImageRecord(
        str(uuid.uuid4()), Status.NOT_CLASSIFIED, ImageInfo("PNG", 1, 1, 1, "ef" * 32), T0, "acme"
    )
    table.insert(mine)
    table.complete(mine.image_id, (Label("espresso", 0.5),), "m", T0, tenant="acme")
    first.close()
    again = SqliteDatabase(path)
    assert again.query("PRAGMA user_version") == [(1,)]
    reopened = SqliteLabelTable(again)
    hits, _ = reopened.images_with_label("acme", "espresso", 10, None)
    assert [hit.image_id for hit in hits] == [mine.image_id]
    hits, _ = reopened.images_with_label(LEGACY_TENANT, "espresso", 10, None)
    assert [hit.image_id for hit in hits] == [classified.image_id]
    keys = {row[0] for row in again.query("SELECT label_key FROM label_index")}
    assert keys == {"acme#espresso", "legacy#espresso"}


def test_a_new_database_starts_at_the_latest_version(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "new.sqlite3")
    rows = database.query("PRAGMA user_version")
    assert rows == [(1,)]
    with sqlite3.connect(tmp_path / "new.sqlite3") as connection:
        assert schema_version(connection) == 1
