"""Notifier on an SQS queue: the callback queue on AWS, read by the delivery function."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.events.callbacks import callback_message

# SendMessageBatch takes at most ten messages.
BATCH_LIMIT = 10


class SqsNotifier:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def notify(self, image_ids: Sequence[str]) -> None:
        ids = list(image_ids)
        for start in range(0, len(ids), BATCH_LIMIT):
            entries = [
                {"Id": str(number), "MessageBody": callback_message(image_id)}
                for number, image_id in enumerate(ids[start : start + BATCH_LIMIT])
            ]
            answer = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SQS refused callback messages: {answer['Failed']}")
