"""The public JSON shape of a record: what GET /images/{id} answers and what a webhook
receives. Pure functions, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.domain.models import ImageRecord, Label, Status, without_secrets

DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class LabelView:
    """Which of the stored labels a reader asked for (GET /images/{id}?top_k=&min_score=)."""

    top_k: int = DEFAULT_TOP_K
    min_score: float = 0.0

    def select(self, labels: tuple[Label, ...]) -> list[dict[str, Any]]:
        chosen = [label for label in labels[: self.top_k] if label.score >= self.min_score]
        return [{"name": label.name, "score": label.score} for label in chosen]


def record_body(record: ImageRecord, view: LabelView = LabelView()) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image_id": record.image_id,
        "status": record.status.value,
        "labels": view.select(record.labels),
        "model": record.model,
        "submitted_at": record.submitted_at.isoformat(),
        "labelled_at": record.labelled_at.isoformat() if record.labelled_at else None,
        "source_url": without_secrets(record.source_url) if record.source_url else None,
        "image": {
            "format": record.image.format,
            "width": record.image.width,
            "height": record.image.height,
            "size_bytes": record.image.size_bytes,
            "sha256": record.image.sha256,
        },
    }
    if record.status is Status.FAILED:
        body["error"] = record.error
    if record.webhook is not None:
        webhook = record.webhook
        body["webhook"] = {
            "url": without_secrets(webhook.url),
            "status": webhook.status.value,
            "attempts": webhook.attempts,
            "last_attempt_at": (
                webhook.last_attempt_at.isoformat() if webhook.last_attempt_at else None
            ),
            "last_error": webhook.last_error,
        }
    if record.previous is not None:
        previous = record.previous
        body["previous"] = {
            "status": previous.status.value,
            "labels": view.select(previous.labels),
            "model": previous.model,
            "labelled_at": previous.labelled_at.isoformat() if previous.labelled_at else None,
        }
    return body
