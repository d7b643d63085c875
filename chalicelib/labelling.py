"""Labelling, the second flow of DESIGN.md: the stream hands over new images in batches;
each is labelled once, ends CLASSIFIED or FAILED, and its callback (if it asked for one) is
queued for delivery, which runs apart so that no receiver ever holds labelling up.

Talks only to the ports; bootstrap.py hands in the adapters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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

# Stored images a batch reads at once (S3 GETs on AWS, files locally).
READ_THREADS = 8
# How much of an exception's message a FAILED record keeps.
MAX_ERROR_MESSAGE = 200

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

    def settled(self) -> set[str]:
        """The images this batch has dealt with, one way or another."""
        return {*self.classified, *self.failed, *self.skipped, *self.retry}


class LabellingRetryNeeded(Exception):
    """The model could not answer for some images that still have attempts left.

    Raised from the stream handler so the stream delivers the batch again.
    """

    def __init__(self, report: LabelReport, cause: Exception) -> None:
        super().__init__(f"{len(report.retry)} image(s) to retry: {cause}")
        self.report = report


class UnfinishedImages(Exception):
    """Images whose labelling raised and that could not even be marked FAILED. The rest of
    their batch is labelled; this is raised last, so that the stream retries the batch and,
    past the mapping's limits, records it in the failure queue (scripts/redrive)."""

    def __init__(self, image_ids: list[str]) -> None:
        super().__init__(f"could not mark {len(image_ids)} image(s) FAILED: {image_ids}")
        self.image_ids = image_ids


# Whether an exception is the infrastructure's (a throttle, a dropped connection, a busy
# database) rather than the image's. Each backend knows its own exceptions, so the
# composition root hands in their classifier (adapters/transient.py): this module never
# imports botocore or sqlite3, and no adapter has to translate every error it can raise.
TransientCheck = Callable[[BaseException], bool]


def no_error_is_transient(error: BaseException) -> bool:
    return False


class LabellingService:
    def __init__(
        self,
        storage: Storage,
        labeller: Labeller,
        policy: LabellingPolicy = LabellingPolicy(),
        callbacks: Callbacks = Callbacks(),
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utc_now,
        is_transient: TransientCheck = no_error_is_transient,
    ) -> None:
        self._store = storage.store
        self._table = storage.table
        self._labeller = labeller
        self._policy = policy
        self._callbacks = callbacks
        self._metrics = metrics or NoMetrics()
        self._clock = clock
        self._is_transient = is_transient
        # Its threads start on the first batch of two or more images.
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="image-read")

    def label_images(self, image_ids: Sequence[str]) -> LabelReport:
        """Label every still-pending image among `image_ids` with one model call.

        Replays are harmless: finished images are skipped, and the table only finishes a
        record that is still NOT_CLASSIFIED. An image the model cannot read is FAILED on its
        own; if the model itself is down, each image counts an attempt, is FAILED once it
        has used them all, and otherwise LabellingRetryNeeded asks for a redelivery.

        If the batch raises anything else, its images are labelled again one at a time: an
        image that raises alone (a poison: say, a record another tool wrote unreadable) is
        FAILED with the error, and the others are labelled. An error of the infrastructure
        (`is_transient`) says nothing about the images and is raised, for the stream to retry.
        """
        report = LabelReport()
        asked = list(dict.fromkeys(image_ids))
        started = time.monotonic()
        try:
            self._label_isolating_poison(asked, report)
        finally:
            if asked:
                log.info("labelled a batch", extra=_batch_keys(asked, report, started))
            self._publish_batch(report)
        self._queue_callbacks(report)
        return report

    def _label_isolating_poison(self, image_ids: list[str], report: LabelReport) -> None:
        try:
            self._label_pending(image_ids, report)
        except LabellingRetryNeeded:
            raise
        except Exception as error:
            if self._is_transient(error):
                raise
            settled = report.settled()
            unsettled = [image_id for image_id in image_ids if image_id not in settled]
            log.warning(
                "a labelling batch raised; labelling its images one at a time",
                extra={"error": describe_error(error), "image_ids": unsettled},
            )
            self._label_one_at_a_time(unsettled, report, error)

    def _label_one_at_a_time(
        self, image_ids: list[str], report: LabelReport, batch_error: Exception
    ) -> None:
        unmarked = []
        for image_id in image_ids:
            error: Exception = batch_error
            if len(image_ids) > 1:  # a batch of one has raised alone already
                try:
                    self._label_pending([image_id], report)
                    continue
                except LabellingRetryNeeded:
                    raise
                except Exception as alone:
                    if self._is_transient(alone):
                        raise
                    error = alone
            if not self._fail_poison(image_id, error, report):
                unmarked.append(image_id)
        if unmarked:
            raise UnfinishedImages(unmarked) from batch_error

    def _fail_poison(self, image_id: str, error: Exception, report: LabelReport) -> bool:
        """Mark FAILED an image whose labelling raised on its own; False if even that
        raised (transient errors are raised)."""
        reason = f"labelling this image raised {describe_error(error)}"
        try:
            done = self._table.fail(image_id, reason, None, self._clock())
        except Exception as fail_error:
            if self._is_transient(fail_error):
                raise
            log.exception(
                "a poison image could not be marked FAILED",
                extra={"image_id": image_id, "error": reason},
            )
            return False
        (report.failed if done else report.skipped).append(image_id)
        log.warning(
            "image set aside: its labelling raised on its own",
            extra={
                "image_id": image_id,
                "status": Status.FAILED.value if done else "unchanged",
                "error": reason,
                "error_type": type(error).__name__,
            },
            exc_info=error,
        )
        return True

    def _label_pending(self, image_ids: list[str], report: LabelReport) -> None:
        records = self._records_to_label(image_ids, report)
        if not records:
            return
        pending: list[ImageRecord] = []  # those whose image went to the labeller, in order
        finished = 0
        try:
            # The labeller takes each image as soon as it is read, and each record is
            # written as soon as its outcome comes, while the labeller goes on with the rest.
            outcomes = self._labeller.label(
                self._readable_images(records, pending, report), self._policy.top_k
            )
            for outcome in outcomes:
                self._finish(pending[finished], outcome, report)
                finished += 1
        except LabellerUnavailable as exc:
            settled = report.settled()
            unfinished = [record for record in records if record.image_id not in settled]
            log.warning(
                "the model is unavailable",
                extra={"error": str(exc), "image_ids": [record.image_id for record in unfinished]},
            )
            self._count_failed_attempt(unfinished, str(exc), report)
            if report.retry:
                raise LabellingRetryNeeded(report, exc) from exc
            return
        if finished != len(pending):
            raise RuntimeError(f"the labeller gave {finished} outcomes for {len(pending)} images")

    def _records_to_label(self, image_ids: list[str], report: LabelReport) -> list[ImageRecord]:
        """The records among `image_ids` still NOT_CLASSIFIED; the others are skipped."""
        records: list[ImageRecord] = []
        for image_id in image_ids:
            record = self._table.get(image_id)
            if record is not None and callback_pending(record):
                report.with_callback.add(image_id)
            if record is None or record.status is not Status.NOT_CLASSIFIED:
                report.skipped.append(image_id)
                continue
            records.append(record)
        return records

    def _readable_images(
        self, records: list[ImageRecord], pending: list[ImageRecord], report: LabelReport
    ) -> Iterator[bytes]:
        """Each record's image, in order, as it is read; a record whose image is missing or
        damaged is FAILED instead, and every other one is added to `pending` as its image
        is handed on."""
        for record, read in zip(records, self._read_all(records), strict=True):
            if isinstance(read, LabelOutcome):
                self._finish(record, read, report)
                continue
            pending.append(record)
            yield read

    def _read_all(self, records: list[ImageRecord]) -> Iterable[bytes | LabelOutcome]:
        """Each record's stored image, checked against its sha256, read side by side: on S3
        one read waits tens of milliseconds, and hashing releases the GIL."""
        if len(records) < 2:
            return map(self._read_checked, records)
        return self._readers.map(self._read_checked, records)

    def _read_checked(self, record: ImageRecord) -> bytes | LabelOutcome:
        """The image's bytes, or the outcome that fails a missing or damaged one."""
        try:
            data = self._store.get(record.image_id)
        except StoredImageMissing:
            return LabelOutcome(error="the stored image is missing")
        if sha256_hex(data) != record.image.sha256:
            return LabelOutcome(error=DAMAGED_IMAGE)
        return data

    def _finish(self, record: ImageRecord, outcome: LabelOutcome, report: LabelReport) -> None:
        image_id = record.image_id
        now = self._clock()
        model = self._labeller.model_id
        if outcome.ok:
            done = self._table.complete(image_id, outcome.labels, model, now, tenant=record.tenant)
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


def describe_error(error: BaseException) -> str:
    """`Type: message`, the message on one line and short, for a record's `error`."""
    message = " ".join(str(error).split())
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[: MAX_ERROR_MESSAGE - 1] + "…"
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _batch_keys(asked: list[str], report: LabelReport, started: float) -> dict[str, object]:
    return {
        "batch_size": len(asked),
        "classified": len(report.classified),
        "failed": len(report.failed),
        "retry": len(report.retry),
        "skipped": len(report.skipped),
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
