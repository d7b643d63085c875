"""A message queue in the local SQLite file, with SQS's semantics where they matter: a
received message is hidden for a visibility timeout and comes back unless deleted, and a
message received too often goes to the dead letters instead.

It carries the callback queue in local mode (`SqliteNotifier`); `chalicelib.local.queue`
hands its messages to the same handler SQS would invoke on AWS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib.adapters.sqlite import SqliteDatabase
from chalicelib.events.callbacks import callback_message

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    body          TEXT NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    visible_at    REAL NOT NULL,
    dead          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_messages_due ON queue_messages (queue, dead, visible_at, id);
"""


@dataclass(frozen=True)
class QueueMessage:
    message_id: int
    body: str
    receive_count: int


class SqliteQueue:
    def __init__(
        self,
        database: SqliteDatabase,
        name: str,
        max_receives: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = database
        self.name = name
        self._max_receives = max_receives
        self._clock = clock
        self._sent = threading.Condition()
        with self._db.transaction() as connection:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)

    def send(self, bodies: Sequence[str]) -> None:
        now = self._clock()
        with self._db.transaction() as connection:
            connection.executemany(
                "INSERT INTO queue_messages (queue, body, visible_at) VALUES (?, ?, ?)",
                [(self.name, body, now) for body in bodies],
            )
        with self._sent:
            self._sent.notify_all()

    def receive(self, limit: int, visibility_seconds: float) -> list[QueueMessage]:
        """Up to `limit` due messages, hidden for `visibility_seconds`. A message received
        more than `max_receives` times is moved to the dead letters instead."""
        now = self._clock()
        received: list[QueueMessage] = []
        with self._db.transaction() as connection:
            rows = connection.execute(
                "SELECT id, body, receive_count FROM queue_messages"
                " WHERE queue = ? AND dead = 0 AND visible_at <= ? ORDER BY id LIMIT ?",
                (self.name, now, limit),
            ).fetchall()
            for message_id, body, count in rows:
                if count >= self._max_receives:
                    connection.execute(
                        "UPDATE queue_messages SET dead = 1 WHERE id = ?", (message_id,)
                    )
                    continue
                connection.execute(
                    "UPDATE queue_messages SET receive_count = ?, visible_at = ? WHERE id = ?",
                    (count + 1, now + visibility_seconds, message_id),
                )
                received.append(QueueMessage(message_id, body, count + 1))
        return received

    def delete(self, message: QueueMessage) -> None:
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM queue_messages WHERE id = ?", (message.message_id,))

    def release(self, message: QueueMessage, delay_seconds: float) -> None:
        """Let the message be received again after `delay_seconds` (a failed handling)."""
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE queue_messages SET visible_at = ? WHERE id = ?",
                (self._clock() + delay_seconds, message.message_id),
            )

    def wait_for_messages(self, timeout: float) -> None:
        """Return when this process sends a message, or after `timeout` seconds."""
        with self._sent:
            self._sent.wait(timeout)

    def dead_letters(self) -> list[QueueMessage]:
        rows = self._db.query(
            "SELECT id, body, receive_count FROM queue_messages"
            " WHERE queue = ? AND dead = 1 ORDER BY id",
            (self.name,),
        )
        return [QueueMessage(int(row[0]), str(row[1]), int(row[2])) for row in rows]


class SqliteNotifier:
    """Notifier port on the local queue."""

    def __init__(self, queue: SqliteQueue) -> None:
        self._queue = queue

    def notify(self, image_ids: Sequence[str]) -> None:
        self._queue.send([callback_message(image_id) for image_id in image_ids])
