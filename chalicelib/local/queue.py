"""SQS's event source mapping, emulated for `chalice local` on the local queue.

Several worker threads each take one message at a time and call the very same handler
Lambda would call, with an SQS-shaped event of one record. A message is deleted once the
handler returns; if the handler raises, it comes back after a backoff, and after the
queue's receive limit it goes to the dead letters. With one message per call and several
workers, a slow callback receiver holds one worker, never the others or labelling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from chalicelib.adapters.sqlite_queue import QueueMessage, SqliteQueue
from chalicelib.events.callbacks import sqs_record
from chalicelib.local.stream import LocalLambdaContext

log = logging.getLogger(__name__)

QueueHandler = Callable[[dict[str, Any], Any], Any]
MAX_BACKOFF_SECONDS = 30.0


class LocalQueuePoller:
    def __init__(
        self,
        queue: SqliteQueue,
        handler: QueueHandler,
        workers: int,
        visibility_seconds: float,
        poll_seconds: float,
    ) -> None:
        self._queue = queue
        self._handler = handler
        self._workers = workers
        self._visibility = visibility_seconds
        self._poll_seconds = poll_seconds
        self._queue_arn = f"arn:aws:sqs:local:000000000000:{queue.name}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self._workers):
            thread = threading.Thread(
                target=self._run, name=f"local-queue-{self._queue.name}-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info("local queue started", extra={"queue": self._queue.name, "workers": self._workers})

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def deliver_one(self) -> bool:
        """Hand one due message to the handler, if there is one; True if there was."""
        messages = self._queue.receive(1, self._visibility)
        if not messages:
            return False
        message = messages[0]
        try:
            self._handler({"Records": [self._record(message)]}, LocalLambdaContext())
        except Exception:
            delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**message.receive_count)
            log.exception(
                "queue message failed; it will be received again",
                extra={"queue": self._queue.name, "attempt": message.receive_count},
            )
            self._queue.release(message, delay)
            return True
        self._queue.delete(message)
        return True

    def _record(self, message: QueueMessage) -> dict[str, Any]:
        return sqs_record(
            str(message.message_id), message.body, self._queue_arn, message.receive_count
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delivered = self.deliver_one()
            except Exception:  # the queue itself failed (a full disk): wait, then go on
                log.exception("local queue read failed", extra={"queue": self._queue.name})
                self._stop.wait(self._poll_seconds * 10)
                continue
            if not delivered:
                self._queue.wait_for_messages(self._poll_seconds)
