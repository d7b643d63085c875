"""A poison record on the stream, through the handler Lambda runs (label_new_images) and
the local stream emulation that calls it (issue 14, stream failures): the images behind
the poison are labelled in the same delivery, the poison ends FAILED with its error, and
the handler does not raise, so the shard moves on."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib.adapters.sqlite import SqliteChangeLog, SqliteLabelTable
from chalicelib.bootstrap import components
from chalicelib.domain.models import ImageRecord
from chalicelib.local.stream import LocalStreamPoller, SqliteStreamSource
from tests.api.test_routes import body, local_stage, upload
from tests.support import solid_image

POISON = "poison-written-by-another-tool"


@pytest.fixture
def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_env: Path
) -> Iterator[Client]:
    yield from local_stage(tmp_path, monkeypatch)


def put_poison(image_id: str) -> None:
    """An ImageLabels item NOT_CLASSIFIED but otherwise unreadable, with its INSERT on the
    change log, as the DynamoDB stream would show an item another tool put."""
    database = components().database
    assert database is not None
    item = {"Id": image_id, "Status": "NOT_CLASSIFIED"}
    with database.transaction() as connection:
        connection.execute(
            "INSERT INTO images (id, status, item) VALUES (?, ?, ?)",
            (image_id, "NOT_CLASSIFIED", json.dumps(item)),
        )
        connection.execute(
            "INSERT INTO stream_log (event_name, image_id, old_item, new_item, created_at)"
            " VALUES ('INSERT', ?, NULL, ?, 0)",
            (image_id, json.dumps(item)),
        )


def test_a_poison_record_fails_alone_and_the_stream_moves_on(client: Client) -> None:
    first = body(upload(client, solid_image(size=(50, 40))))["image_id"]
    put_poison(POISON)
    behind = [body(upload(client, solid_image(size=(51 + n, 40))))["image_id"] for n in range(2)]
    database = components().database
    assert database is not None
    poller = LocalStreamPoller(
        SqliteStreamSource(SqliteChangeLog(database), "arn:test"),
        lambda event, context: client.lambda_.invoke("label_new_images", event),
        batch_size=16,
        poll_seconds=0.01,
    )
    # One delivery holds all four; the handler must not raise, or the poller would
    # deliver the same batch again and again.
    assert poller.deliver_pending() == 4
    for image_id in [first, *behind]:
        assert body(client.http.get(f"/images/{image_id}"))["status"] == "CLASSIFIED"
    [(item,)] = database.query("SELECT item FROM images WHERE id = ?", (POISON,))
    stored = json.loads(item)
    assert stored["Status"] == "FAILED"
    assert stored["Error"].startswith("labelling this image raised KeyError")
    # The writes labelling made are on the change log too; delivering them labels nothing.
    while poller.deliver_pending():
        pass


def test_a_busy_database_is_raised_for_the_stream_to_deliver_the_batch_again(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bootstrap hands local mode the SQLite classifier: a locked database is no poison."""
    image_id = body(upload(client, solid_image(size=(60, 40))))["image_id"]
    database = components().database
    assert database is not None
    poller = LocalStreamPoller(
        SqliteStreamSource(SqliteChangeLog(database), "arn:test"),
        lambda event, context: client.lambda_.invoke("label_new_images", event),
        batch_size=16,
        poll_seconds=0.01,
    )
    real_get = SqliteLabelTable.get

    def busy_get(table: SqliteLabelTable, wanted: str) -> ImageRecord | None:
        if wanted == image_id:
            locked = sqlite3.OperationalError("database is locked")
            locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise locked
        return real_get(table, wanted)

    monkeypatch.setattr(SqliteLabelTable, "get", busy_get)
    with pytest.raises(sqlite3.OperationalError):
        poller.deliver_pending()
    monkeypatch.setattr(SqliteLabelTable, "get", real_get)
    assert body(client.http.get(f"/images/{image_id}"))["status"] == "NOT_CLASSIFIED"
    assert poller.deliver_pending() == 1  # the same record, delivered again
    assert body(client.http.get(f"/images/{image_id}"))["status"] == "CLASSIFIED"
