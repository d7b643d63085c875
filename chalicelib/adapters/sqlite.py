"""LabelTable on one SQLite file (WAL), with the change log that stands in for the
DynamoDB stream in local mode.

Every write appends to `stream_log` in the same transaction, as DynamoDB writes the
stream: INSERT for a new record, MODIFY for a change, each with the item before and after.
`image_digests` holds the claims of `insert(unique_bytes=True)`: one record per digest and
tenant (its `sha256` column holds `<tenant>#<digest>`), and `label_index` the search
entries, keyed `<tenant>#<label>`: each tenant searches and dedupes only its own images.
sqlite_migrations.py brings an older database's data to this shape when it opens.

Over 300 lines on purpose: it is the whole LabelTable contract on one backend, with the
change log its writes append to in the same transactions.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from chalicelib.adapters.items import (
    Item,
    classified_changes,
    digest_claim,
    failed_changes,
    from_item,
    reopened,
    tenant_label_key,
    tenant_of,
    to_item,
    webhook_item,
)
from chalicelib.adapters.sqlite_migrations import migrate
from chalicelib.domain.errors import DuplicateImage, DuplicateImageId, InvalidPageToken, StorageFull
from chalicelib.domain.jsontext import loads_json
from chalicelib.domain.models import ImageRecord, Label, LabelHit, Status, WebhookState

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id     TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    item   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_name TEXT NOT NULL,
    image_id   TEXT NOT NULL,
    old_item   TEXT,
    new_item   TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_sha256 ON images (json_extract(item, '$.Sha256'));
CREATE TABLE IF NOT EXISTS image_digests (
    sha256   TEXT PRIMARY KEY,
    image_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS label_index (
    label_key TEXT NOT NULL,
    image_id  TEXT NOT NULL,
    score     REAL NOT NULL,
    PRIMARY KEY (label_key, image_id)
);
CREATE INDEX IF NOT EXISTS label_index_by_score ON label_index (label_key, score DESC, image_id);
CREATE TABLE IF NOT EXISTS stream_checkpoints (
    consumer TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL
);
-- API keys (sqlite_keys.py): the secret's hash only, never the secret.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    label       TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys (tenant, created_at);
-- Images accepted per API key and UTC day (sqlite_quota.py).
CREATE TABLE IF NOT EXISTS image_quota (
    key_id TEXT NOT NULL,
    day    TEXT NOT NULL,
    images INTEGER NOT NULL,
    PRIMARY KEY (key_id, day)
);
"""


class SqliteDatabase:
    """One connection shared by the server's threads, serialised by a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._committed = threading.Event()
        self._connection = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(SCHEMA)
        migrate(self._connection)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; StorageFull if the disk has no room for it (nothing is
        written then)."""
        with self._lock, _full_disk_is_storage_full():
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
                self._connection.execute("COMMIT")
            except BaseException:
                if self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise
        self._committed.set()

    def wait_for_commit(self, timeout: float) -> None:
        """Return once a transaction of this process commits, or after `timeout` seconds
        (another process's commits are seen only then)."""
        self._committed.wait(timeout)
        self._committed.clear()

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class SqliteLabelTable:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    def insert(self, record: ImageRecord, *, unique_bytes: bool = True) -> None:
        item = to_item(record)
        sha256 = record.image.sha256
        with self._db.transaction() as connection:
            try:
                connection.execute(
                    "INSERT INTO images (id, status, item) VALUES (?, ?, ?)",
                    (record.image_id, record.status.value, json.dumps(item)),
                )
            except sqlite3.IntegrityError:
                raise DuplicateImageId(record.image_id) from None
            if unique_bytes:
                # BEGIN IMMEDIATE has serialised the writers: nobody can claim the bytes
                # between this read and the claim below. Raising rolls the insert back.
                claim = digest_claim(record.tenant, sha256)
                if (first := _digest_owner(connection, claim)) is not None:
                    raise DuplicateImage(sha256, first)
                connection.execute(
                    "INSERT INTO image_digests (sha256, image_id) VALUES (?, ?)",
                    (claim, record.image_id),
                )
            _append_change(connection, "INSERT", record.image_id, None, item)

    def get(self, image_id: str) -> ImageRecord | None:
        rows = self._db.query("SELECT item FROM images WHERE id = ?", (image_id,))
        return from_item(json.loads(rows[0][0])) if rows else None

    def complete(
        self, image_id: str, labels: tuple[Label, ...], model: str, at: datetime, *, tenant: str
    ) -> bool:
        # The stored record's tenant is used: it is the one `tenant` must name.
        return self._finish(image_id, classified_changes(labels, model, at))

    def fail(self, image_id: str, error: str, model: str | None, at: datetime) -> bool:
        return self._finish(image_id, failed_changes(error, model, at))

    def count_attempt(self, image_id: str) -> int:
        with self._db.transaction() as connection:
            old = _current_item(connection, image_id)
            if old is None:
                return 0
            new = dict(old, Attempts=int(old.get("Attempts", 0)) + 1)
            _write(connection, image_id, old, new)
            return int(new["Attempts"])

    def find_by_sha256(self, tenant: str, sha256: str) -> ImageRecord | None:
        rows = self._db.query(
            "SELECT item FROM images WHERE json_extract(item, '$.Tenant') = ?"
            " AND json_extract(item, '$.Sha256') = ?"
            " ORDER BY json_extract(item, '$.SubmittedAt') LIMIT 1",
            (tenant, sha256),
        )
        return from_item(json.loads(rows[0][0])) if rows else None

    def reopen(self, image_id: str) -> ImageRecord | None:
        with self._db.transaction() as connection:
            old = _current_item(connection, image_id)
            if old is None or old["Status"] == Status.NOT_CLASSIFIED.value:
                return None
            new = reopened(old)
            _write(connection, image_id, old, new)
            connection.execute("DELETE FROM label_index WHERE image_id = ?", (image_id,))
            return from_item(new)

    def delete(self, image_id: str) -> bool:
        with self._db.transaction() as connection:
            old = _current_item(connection, image_id)
            if old is None:
                return False
            connection.execute("DELETE FROM images WHERE id = ?", (image_id,))
            connection.execute("DELETE FROM label_index WHERE image_id = ?", (image_id,))
            connection.execute(
                "DELETE FROM image_digests WHERE sha256 = ? AND image_id = ?",
                (digest_claim(tenant_of(old), str(old.get("Sha256"))), image_id),
            )
            _append_change(connection, "REMOVE", image_id, old, None)
            return True

    def record_delivery(self, image_id: str, webhook: WebhookState) -> None:
        with self._db.transaction() as connection:
            old = _current_item(connection, image_id)
            if old is not None:
                _write(connection, image_id, old, {**old, "Webhook": webhook_item(webhook)})

    def images_with_label(
        self, tenant: str, name: str, limit: int, after: str | None
    ) -> tuple[list[LabelHit], str | None]:
        score, last_id = _page_position(after) if after else (2.0, "")
        rows = self._db.query(
            "SELECT image_id, score FROM label_index WHERE label_key = ?"
            " AND (score < ? OR (score = ? AND image_id > ?))"
            " ORDER BY score DESC, image_id LIMIT ?",
            (tenant_label_key(tenant, name), score, score, last_id, limit + 1),
        )
        hits = [LabelHit(image_id=row[0], score=row[1]) for row in rows[:limit]]
        more = len(rows) > limit
        return hits, _page_token(hits[-1]) if more else None

    def _finish(self, image_id: str, changes: Item) -> bool:
        with self._db.transaction() as connection:
            old = _current_item(connection, image_id)
            # .get: failing a record another tool wrote unreadable must still work.
            if old is None or old.get("Status") != Status.NOT_CLASSIFIED.value:
                return False
            _write(connection, image_id, old, {**old, **changes})
            for label in changes.get("Labels", []):
                connection.execute(
                    "INSERT OR REPLACE INTO label_index (label_key, image_id, score)"
                    " VALUES (?, ?, ?)",
                    (tenant_label_key(tenant_of(old), label["Name"]), image_id, label["Score"]),
                )
            return True


@dataclass(frozen=True)
class Change:
    seq: int
    event_name: str
    image_id: str
    old_item: Item | None
    new_item: Item | None
    created_at: float
    # The items' size as stored (JSON): what the stream record's SizeBytes reports.
    size_bytes: int = 0


class SqliteChangeLog:
    """Reads the change log in order and remembers how far each consumer got."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    def read_after(self, seq: int, limit: int) -> list[Change]:
        rows = self._db.query(
            "SELECT seq, event_name, image_id, old_item, new_item, created_at"
            " FROM stream_log WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [
            Change(
                seq=row[0],
                event_name=row[1],
                image_id=row[2],
                old_item=json.loads(row[3]) if row[3] else None,
                new_item=json.loads(row[4]) if row[4] else None,
                created_at=row[5],
                size_bytes=len(row[2]) + len(row[3] or "") + len(row[4] or ""),
            )
            for row in rows
        ]

    def checkpoint(self, consumer: str) -> int:
        rows = self._db.query("SELECT seq FROM stream_checkpoints WHERE consumer = ?", (consumer,))
        return int(rows[0][0]) if rows else 0

    def save_checkpoint(self, consumer: str, seq: int) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "INSERT INTO stream_checkpoints (consumer, seq) VALUES (?, ?)"
                " ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq",
                (consumer, seq),
            )


def _page_token(last: LabelHit) -> str:
    raw = json.dumps([last.score, last.image_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _page_position(token: str) -> tuple[float, str]:
    try:
        score, image_id = loads_json(base64.urlsafe_b64decode(token.encode()))
        return float(score), str(image_id)
    except (ValueError, TypeError, UnicodeError):
        raise InvalidPageToken("`next_token` is not a token this service made") from None


@contextmanager
def _full_disk_is_storage_full() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode == sqlite3.SQLITE_FULL:
            raise StorageFull("the record store is full; try again later") from error
        raise


def _digest_owner(connection: sqlite3.Connection, claim: str) -> str | None:
    """The id of the record that claimed these bytes in its tenant, if one did."""
    row = connection.execute(
        "SELECT image_id FROM image_digests WHERE sha256 = ?", (claim,)
    ).fetchone()
    return str(row[0]) if row else None


def _current_item(connection: sqlite3.Connection, image_id: str) -> Item | None:
    row = connection.execute("SELECT item FROM images WHERE id = ?", (image_id,)).fetchone()
    return json.loads(row[0]) if row else None


def _write(connection: sqlite3.Connection, image_id: str, old: Item, new: Item) -> None:
    new_text = json.dumps(new)  # once, for the record and its change alike
    connection.execute(
        "UPDATE images SET status = ?, item = ? WHERE id = ?", (new["Status"], new_text, image_id)
    )
    _append_change(connection, "MODIFY", image_id, json.dumps(old), new_text)


def _append_change(
    connection: sqlite3.Connection,
    event_name: str,
    image_id: str,
    old: Item | str | None,
    new: Item | str | None,
) -> None:
    """One change of the log; each item as a dict, or as its JSON text already made."""
    connection.execute(
        "INSERT INTO stream_log (event_name, image_id, old_item, new_item, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (event_name, image_id, _json_text(old), _json_text(new), time.time()),
    )


def _json_text(item: Item | str | None) -> str | None:
    if item is None or isinstance(item, str):
        return item
    return json.dumps(item)
