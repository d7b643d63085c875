"""KeyStore on the local SQLite database, in its `api_keys` table (made with the others,
sqlite.py's SCHEMA, so an older data folder gains it on the next start)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from chalicelib.adapters.sqlite import SqliteDatabase
from chalicelib.domain.api_keys import ApiKeyRecord, DuplicateKeyId

COLUMNS = "key_id, tenant, secret_hash, created_at, revoked_at, label"


class SqliteKeyStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    def put_new(self, record: ApiKeyRecord) -> None:
        with self._db.transaction() as connection:
            try:
                connection.execute(
                    f"INSERT INTO api_keys ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.key_id,
                        record.tenant,
                        record.secret_hash,
                        record.created_at.isoformat(),
                        _time_text(record.revoked_at),
                        record.label,
                    ),
                )
            except sqlite3.IntegrityError:
                raise DuplicateKeyId(record.key_id) from None

    def get(self, key_id: str) -> ApiKeyRecord | None:
        rows = self._db.query(f"SELECT {COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
        return _record(rows[0]) if rows else None

    def list(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        if tenant is None:
            rows = self._db.query(f"SELECT {COLUMNS} FROM api_keys ORDER BY created_at, key_id")
        else:
            rows = self._db.query(
                f"SELECT {COLUMNS} FROM api_keys WHERE tenant = ? ORDER BY created_at, key_id",
                (tenant,),
            )
        return [_record(row) for row in rows]

    def revoke(self, key_id: str, at: datetime) -> ApiKeyRecord | None:
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (at.isoformat(), key_id),
            )
            row = connection.execute(
                f"SELECT {COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        return _record(row) if row else None


def _time_text(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _record(row: tuple[Any, ...]) -> ApiKeyRecord:
    key_id, tenant, hashed, created_at, revoked_at, label = row
    return ApiKeyRecord(
        key_id=key_id,
        tenant=tenant,
        secret_hash=hashed,
        created_at=datetime.fromisoformat(created_at),
        revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
        label=label,
    )
