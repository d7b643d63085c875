"""ImageQuota on the local SQLite database, in its `image_quota` table (sqlite.py's
schema): one row per key and UTC day. A reserve reads and adds in one write transaction,
which SqliteDatabase serialises (its lock, BEGIN IMMEDIATE), so two at once cannot both
pass the limit."""

from __future__ import annotations

from chalicelib.adapters.sqlite import SqliteDatabase


class SqliteImageQuota:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    def reserve(self, key_id: str, day: str, count: int, limit: int) -> bool:
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        with self._db.transaction() as connection:
            row = connection.execute(
                "SELECT images FROM image_quota WHERE key_id = ? AND day = ?", (key_id, day)
            ).fetchone()
            used = row[0] if row else 0
            if used + count > limit:
                return False
            connection.execute(
                "INSERT INTO image_quota (key_id, day, images) VALUES (?, ?, ?)"
                " ON CONFLICT (key_id, day) DO UPDATE SET images = images + excluded.images",
                (key_id, day, count),
            )
        return True

    def release(self, key_id: str, day: str, count: int) -> None:
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE image_quota SET images = MAX(0, images - ?) WHERE key_id = ? AND day = ?",
                (count, key_id, day),
            )

    def used(self, key_id: str, day: str) -> int:
        rows = self._db.query(
            "SELECT images FROM image_quota WHERE key_id = ? AND day = ?", (key_id, day)
        )
        return int(rows[0][0]) if rows else 0
