"""Labelling, the second flow of DESIGN.md: the stream hands over new images in batches;
each is labelled once, ends CLASSIFIED or FAILED, and its callback (if it asked for one) is
queued for delivery, which runs apart so that no receiver ever holds labelling up.

Talks only to the ports; bootstrap.py hands in the adapters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from chalicelib.domain.decisions import (
    AfterModelOutage,
    after_model_outage,
    callback_pending,
    sha256_hex,
)
from chalicelib.domain.errors import LabellerUnavailable, StoredImageMissing
from chalicelib.domain.models import (
    ImageRecord,
    LabelOutcome,
    Status,
    WebhookState,
    WebhookStatus,
    utc_now,
)
from chalicelib.domain.record_json import record_body
from chalicelib.ports import CallbackSender, Labeller, Metrics, NoMetrics, Notifier, Storage

log = logging.getLogger(__name__)

DAMAGED_IMAGE = (
    "the stored image is damaged (its bytes no longer match their sha256); "
    "submit the same image again to replace it"
)


@dataclass(frozen=True)
class LabellingPolicy:
    top_k: int = 10  # labels kept per image
    max_attempts: int = 3  # model outages an image sits through before it is FAILED


@dataclass(frozen=True)
class Callbacks:
    """Both ends of callback delivery: the queue labelling hands finished images to, and
    the sender its handler posts them with. Either may be missing from a deployment."""

    notifier: Notifier | None = None
    sender: CallbackSender | None = None


@dataclass
class LabelReport:
    """What one labelling batch did, by image id."""

    classified: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    # Seconds from submit to CLASSIFIED, one per classified image.
    latencies: list[float] = field(default_factory=list)
    # Images of this batch, finished now or before, whose callback is still to be sent.
    with_callback: set[str] = field(default_factory=set)


class LabellingRetryNeeded(Exception):
    """The model could not answer for some images that still have attempts left.

    Raised from the stream handler so the stream delivers the batch again.
    """

    def __init__(self, report: LabelReport, cause: Exception) -> None:
        super().__init__(f"{len(report.retry)} image(s) to retry: {cause}")
        self.report = report


class LabellingService:
    def __init__(
        self,
        storage: Storage,
        labeller: Labeller,
        policy: LabellingPolicy = LabellingPolicy(),
        callbacks: Callbacks = Callbacks(),
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = storage.store
        self._table = storage.table
        self._labeller = labeller
        self._policy = policy
        self._callbacks = callbacks
        self._metrics = metrics or NoMetrics()
        self._clock = clock

    def label_images(self, image_ids: Sequence[str]) -> LabelReport:
        """Label every still-pending image among `image_ids` with one model call.

        Replays are harmless: finished images are skipped, and the table only finishes a
        record that is still NOT_CLASSIFIED. An image the model cannot read is FAILED on its
        own; if the model itself is down, each image counts an attempt, is FAILED once it
        has used them all, and otherwise LabellingRetryNeeded asks for a redelivery.
        """
        report = LabelReport()
        asked = list(dict.fromkeys(image_ids))
        started = time.monotonic()
        try:
            self._label_pending(asked, report)
        finally:
            if asked:
                log.info("labelled a batch", extra=_batch_keys(asked, report, started))
            self._publish_batch(report)
        self._queue_callbacks(report)
        return report

    def _label_pending(self, image_ids: list[str], report: LabelReport) -> None:
        pending, images = self._pending_images(image_ids, report)
        if not pending:
            return
        try:
            outcomes = self._labeller.label(images, self._policy.top_k)
        except LabellerUnavailable as exc:
            log.warning(
                "the model is unavailable",
                extra={"error": str(exc), "image_ids": [record.image_id for record in pending]},
            )
            self._count_failed_attempt(pending, str(exc), report)
            if report.retry:
                raise LabellingRetryNeeded(report, exc) from exc
            return
        for record, outcome in zip(pending, outcomes, strict=True):
            self._finish(record, outcome, report)

    def _pending_images(
        self, image_ids: list[str], report: LabelReport
    ) -> tuple[list[ImageRecord], list[bytes]]:
        pending: list[ImageRecord] = []
        images: list[bytes] = []
        for image_id in image_ids:
            record = self._table.get(image_id)
            if record is not None and callback_pending(record):
                report.with_callback.add(image_id)
            if record is None or record.status is not Status.NOT_CLASSIFIED:
                report.skipped.append(image_id)
                continue
            try:
                data = self._store.get(image_id)
            except StoredImageMissing:
                self._finish(record, LabelOutcome(error="the stored image is missing"), report)
                continue
            if sha256_hex(data) != record.image.sha256:
                self._finish(record, LabelOutcome(error=DAMAGED_IMAGE), report)
                continue
            images.append(data)
            pending.append(record)
        return pending, images

    def _finish(self, record: ImageRecord, outcome: LabelOutcome, report: LabelReport) -> None:
        image_id = record.image_id
        now = self._clock()
        model = self._labeller.model_id
        if outcome.ok:
            done = self._table.complete(image_id, outcome.labels, model, now)
            (report.classified if done else report.skipped).append(image_id)
            if done:
                latency = (now - record.submitted_at).total_seconds()
                report.latencies.append(latency)
                top = outcome.labels[0] if outcome.labels else None
                log.info(
                    "image classified",
                    extra={
                        "image_id": image_id,
                        "status": Status.CLASSIFIED.value,
                        "model": model,
                        "label": top.name if top else None,
                        "score": top.score if top else None,
                        "latency_ms": round(latency * 1000, 1),
                    },
                )
        else:
            done = self._table.fail(image_id, outcome.error or "unknown error", model, now)
            (report.failed if done else report.skipped).append(image_id)
            if done:
                log.warning(
                    "image failed",
                    extra={
                        "image_id": image_id,
                        "status": Status.FAILED.value,
                        "model": model,
                        "error": outcome.error,
                    },
                )

    def _count_failed_attempt(
        self, records: list[ImageRecord], reason: str, report: LabelReport
    ) -> None:
        for record in records:
            attempts = self._table.count_attempt(record.image_id)
            if after_model_outage(attempts, self._policy.max_attempts) is AfterModelOutage.FAIL:
                error = f"the model failed {attempts} times; last error: {reason}"
                self._finish(record, LabelOutcome(error=error), report)
            else:
                report.retry.append(record.image_id)

    def _publish_batch(self, report: LabelReport) -> None:
        """Batch size and outcomes; latency from submit to label for each classified image."""
        labelled = len(report.classified) + len(report.failed) + len(report.retry)
        if labelled == 0:
            return
        self._metrics.record("BatchSize", labelled, "Count")
        self._metrics.record("ImagesClassified", len(report.classified), "Count")
        self._metrics.record("ImagesFailed", len(report.failed), "Count")
        for seconds in report.latencies:
            self._metrics.record("LabelLatency", seconds * 1000, "Milliseconds")
        self._metrics.publish()

    def _queue_callbacks(self, report: LabelReport) -> None:
        """Hand the finished images' callbacks to the delivery queue: a slow receiver then
        delays only its own delivery, never labelling. Images met again already finished
        (a replayed batch) are queued again, in case the first queueing was lost."""
        finished = set(report.classified + report.failed + report.skipped)
        image_ids = sorted(report.with_callback & finished)
        if not image_ids:
            return
        if self._callbacks.notifier is None:
            for image_id in image_ids:
                self._record_undeliverable(image_id, "this deployment has no webhook queue")
            return
        self._callbacks.notifier.notify(image_ids)

    def deliver_callbacks(self, image_ids: Sequence[str]) -> None:
        """POST each finished record to its callback URL and write down how it went; called
        by the delivery queue's handler. Only callbacks still PENDING are sent, so a message
        delivered twice sends once (unless two deliveries run at the very same time).
        Delivery problems are recorded on the image, never raised."""
        for image_id in dict.fromkeys(image_ids):
            record = self._table.get(image_id)
            if record is None or record.webhook is None or not callback_pending(record):
                continue
            if record.status is Status.NOT_CLASSIFIED:
                continue  # sent back to labelling since it was queued: it will be queued again
            self._table.record_delivery(image_id, self._delivered(record, record.webhook))

    def _delivered(self, record: ImageRecord, webhook: WebhookState) -> WebhookState:
        if self._callbacks.sender is None:
            return replace(
                webhook,
                status=WebhookStatus.FAILED,
                last_error="this deployment has no webhook secret (IMAGELABELLER_WEBHOOK_SECRET)",
            )
        delivery = self._callbacks.sender.deliver(webhook.url, record_body(record))
        keys = {"image_id": record.image_id, "attempts": delivery.attempts}
        if delivery.delivered:
            log.info("callback delivered", extra=keys)
        else:
            log.warning("callback failed", extra={**keys, "error": delivery.last_error})
        return replace(
            webhook,
            status=WebhookStatus.DELIVERED if delivery.delivered else WebhookStatus.FAILED,
            attempts=delivery.attempts,
            last_attempt_at=delivery.last_attempt_at,
            last_error=delivery.last_error,
        )

    def _record_undeliverable(self, image_id: str, reason: str) -> None:
        record = self._table.get(image_id)
        if record is None or record.webhook is None:
            return
        failed = replace(record.webhook, status=WebhookStatus.FAILED, last_error=reason)
        self._table.record_delivery(image_id, failed)


def _batch_keys(asked: list[str], report: LabelReport, started: float) -> dict[str, object]:
    return {
        "batch_size": len(asked),
        "classified": len(report.classified),
        "failed": len(report.failed),
        "retry": len(report.retry),
        "skipped": len(report.skipped),
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
