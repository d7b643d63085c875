"""The use cases: submit an image, read its record, label a batch from the stream.

Talks only to the ports; bootstrap.py hands in the adapters.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from chalicelib import imaging
from chalicelib.config import Limits
from chalicelib.errors import (
    Conflict,
    DuplicateImage,
    ImageLabellerError,
    ImageNotFound,
    ImageTooLarge,
    InvalidRequest,
    LabellerUnavailable,
    StoredImageMissing,
)
from chalicelib.models import (
    ImageInfo,
    ImageRecord,
    LabelHit,
    LabelOutcome,
    Status,
    UploadTicket,
    WebhookState,
    WebhookStatus,
    utc_now,
)
from chalicelib.ports import CallbackSender, Fetcher, ImageStore, Labeller, LabelTable, Metrics
from chalicelib.views import record_body

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 2048
# Fetched concurrently within one request: API Gateway gives a request 29 s in all.
MAX_BATCH_URLS = 10
# How long an upload URL stays valid.
UPLOAD_SECONDS = 900
# Tries of a submit whose bytes' first record is deleted while the submit looks for it.
ACCEPT_ATTEMPTS = 3


@dataclass(frozen=True)
class Submission:
    """An accepted image: a new record (`created`), or the record of the same bytes."""

    record: ImageRecord
    created: bool


@dataclass(frozen=True)
class BatchItem:
    """One URL of a batch submit: accepted, or refused with its own error."""

    url: object
    submission: Submission | None = None
    error: ImageLabellerError | None = None


@dataclass
class LabelReport:
    """What one labelling batch did, by image id."""

    classified: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    # Seconds from submit to CLASSIFIED, one per classified image.
    latencies: list[float] = field(default_factory=list)
    # Images of this batch that were submitted with a callback URL.
    with_callback: set[str] = field(default_factory=set)


class LabellingRetryNeeded(Exception):
    """The model could not answer for some images that still have attempts left.

    Raised from the stream handler so the stream delivers the batch again.
    """

    def __init__(self, report: LabelReport, cause: Exception) -> None:
        super().__init__(f"{len(report.retry)} image(s) to retry: {cause}")
        self.report = report


class ImageService:
    def __init__(
        self,
        store: ImageStore,
        table: LabelTable,
        labeller: Labeller,
        fetcher: Fetcher,
        limits: Limits,
        top_k: int = 10,
        max_attempts: int = 3,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        metrics: Metrics | None = None,
        callbacks: CallbackSender | None = None,
    ) -> None:
        self._store = store
        self._table = table
        self._labeller = labeller
        self._fetcher = fetcher
        self._limits = limits
        self._top_k = top_k
        self._max_attempts = max_attempts
        self._clock = clock
        self._new_id = new_id
        self._metrics = metrics or _NoMetrics()
        self._callbacks = callbacks

    def submit_url(self, url: object, callback_url: object = None) -> Submission:
        url = _checked_url(url, "url")
        webhook = self._webhook(callback_url)
        data = self._fetcher.fetch(url)
        return self._accept(data, source_url=url, webhook=webhook)

    def submit_upload(self, data: bytes, callback_url: object = None) -> Submission:
        return self._accept(data, source_url=None, webhook=self._webhook(callback_url))

    def _webhook(self, callback_url: object) -> WebhookState | None:
        """The callback asked for, checked against the fetch rules before anything else."""
        if callback_url is None:
            return None
        url = _checked_url(callback_url, "callback_url")
        self._fetcher.check_url(url)
        return WebhookState(url=url)

    def get(self, image_id: str) -> ImageRecord:
        record = self._table.get(image_id) if _looks_like_id(image_id) else None
        if record is None:
            raise ImageNotFound(f"no image with id {image_id!r}")
        return record

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
            finished = report.classified + report.failed
            self._deliver_callbacks([i for i in finished if i in report.with_callback])
        return report

    def _deliver_callbacks(self, finished_ids: list[str]) -> None:
        """POST each finished record to its callback URL, once, and write down how it went.
        Delivery problems never fail the batch: they are recorded on the image. Only images
        submitted with a callback are read again (for their labels)."""
        for image_id in finished_ids:
            record = self._table.get(image_id)
            if record is None or record.webhook is None:
                continue
            if record.webhook.status is not WebhookStatus.PENDING:
                continue
            self._table.record_delivery(image_id, self._delivered(record, record.webhook))

    def _delivered(self, record: ImageRecord, webhook: WebhookState) -> WebhookState:
        if self._callbacks is None:
            return replace(
                webhook,
                status=WebhookStatus.FAILED,
                last_error="this deployment has no webhook secret (IMAGELABELLER_WEBHOOK_SECRET)",
            )
        delivery = self._callbacks.deliver(webhook.url, record_body(record))
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

    def _label_pending(self, image_ids: list[str], report: LabelReport) -> None:
        pending, images = self._pending_images(image_ids, report)
        if not pending:
            return
        try:
            outcomes = self._labeller.label(images, self._top_k)
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

    def submit_batch(self, urls: object, callback_url: object = None) -> list[BatchItem]:
        """Several URLs at once, fetched concurrently; each gets its own answer, so one bad
        URL does not fail the others."""
        if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_BATCH_URLS:
            raise InvalidRequest(f"`urls` must be a list of 1 to {MAX_BATCH_URLS} URLs")
        if not all(isinstance(url, str) for url in urls):
            raise InvalidRequest("every member of `urls` must be a string")
        self._webhook(callback_url)  # a bad callback refuses the whole batch
        with ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="batch") as pool:
            return list(pool.map(lambda url: self._batch_item(url, callback_url), urls))

    def _batch_item(self, url: object, callback_url: object) -> BatchItem:
        try:
            return BatchItem(url=url, submission=self.submit_url(url, callback_url))
        except ImageLabellerError as error:
            return BatchItem(url=url, error=error)

    def delete(self, image_id: str) -> None:
        """Remove the record (and its search entries) first, then the stored image."""
        if not _looks_like_id(image_id) or not self._table.delete(image_id):
            raise ImageNotFound(f"no image with id {image_id!r}")
        self._store.delete(image_id)
        log.info("image deleted", extra={"image_id": image_id})

    def relabel(self, image_id: str) -> ImageRecord:
        """Label a finished image again with the current model; its last result is kept."""
        record = self.get(image_id)
        if record.status is Status.NOT_CLASSIFIED:
            raise Conflict(f"image {image_id} is still being labelled")
        reopened = self._table.reopen(image_id)
        if reopened is None:
            raise Conflict(f"image {image_id} changed while it was being sent to relabel")
        log.info(
            "image sent to relabel",
            extra={"image_id": image_id, "previous_status": record.status.value},
        )
        return reopened

    def images_with_label(
        self, name: str, limit: int, page_token: str | None
    ) -> tuple[list[LabelHit], str | None]:
        if not name.strip():
            raise InvalidRequest("the label name is empty")
        return self._table.images_with_label(name, limit, page_token)

    def start_upload(self, content_type: object) -> UploadTicket:
        """A place to PUT a large image directly (past API Gateway's request limit). Once
        the bytes arrive there, register_upload makes the image under this id."""
        media = content_type if content_type is not None else "application/octet-stream"
        if not isinstance(media, str) or not _is_image_media_type(media):
            raise InvalidRequest("`content_type` must be image/* or application/octet-stream")
        image_id = self._new_id()
        target = self._store.upload_target(upload_key(image_id), media, UPLOAD_SECONDS)
        expires_at = self._clock() + timedelta(seconds=UPLOAD_SECONDS)
        return UploadTicket(image_id=image_id, target=target, expires_at=expires_at)

    def register_upload(self, image_id: str) -> ImageRecord | None:
        """The bytes a client PUT to its upload URL, checked and queued like any submitted
        image under the ticket's id. Bytes we refuse make a FAILED record saying why (the
        client can no longer be answered with a 4xx). Replays change nothing."""
        known = self._table.get(image_id)
        if known is not None:
            self._store.delete(upload_key(image_id))
            return known
        try:
            data = self._store.get(upload_key(image_id))
        except StoredImageMissing:
            return None
        try:
            record = self._store_new(data, source_url=None, image_id=image_id, unique_bytes=False)
        except ImageLabellerError as error:
            record = self._refused_upload(image_id, data, error)
            self._table.insert(record, unique_bytes=False)
            log.warning(
                "upload refused",
                extra={
                    "image_id": image_id,
                    "status": record.status.value,
                    "size_bytes": len(data),
                    "error": record.error,
                },
            )
        self._store.delete(upload_key(image_id))
        return record

    def _refused_upload(self, image_id: str, data: bytes, error: ImageLabellerError) -> ImageRecord:
        now = self._clock()
        return ImageRecord(
            image_id=image_id,
            status=Status.FAILED,
            image=ImageInfo("unknown", 0, 0, len(data), hashlib.sha256(data).hexdigest()),
            submitted_at=now,
            error=f"the upload was refused ({error.code}): {error.message}",
            labelled_at=now,
        )

    def _accept(
        self, data: bytes, source_url: str | None, webhook: WebhookState | None
    ) -> Submission:
        """A new record for new bytes; for known bytes, the first record's answer.

        The lookup answers a resubmit cheaply (and finds records older than the table's
        claims). Two submits of the same new bytes at once both miss it and both store the
        image; the table lets one record claim the bytes, and the other submit removes its
        image and answers as a resubmit."""
        digest = hashlib.sha256(data).hexdigest()
        for _ in range(ACCEPT_ATTEMPTS):
            known = self._table.find_by_sha256(digest)
            if known is not None:
                return self._resubmitted(known)
            try:
                record = self._store_new(data, source_url, self._new_id(), webhook, digest)
            except DuplicateImage as duplicate:
                first = self._table.get(duplicate.image_id)
                if first is None:
                    continue  # deleted since it refused ours: look again
                log.info(
                    "same bytes submitted at once",
                    extra={"image_id": first.image_id, "sha256": digest},
                )
                return self._resubmitted(first)
            return Submission(record, created=True)
        raise Conflict("the image was deleted while it was being submitted again; try again")

    def _store_new(
        self,
        data: bytes,
        source_url: str | None,
        image_id: str,
        webhook: WebhookState | None = None,
        sha256: str | None = None,
        unique_bytes: bool = True,
    ) -> ImageRecord:
        if len(data) > self._limits.max_image_bytes:
            raise ImageTooLarge(
                f"the image is {len(data)} bytes; the limit is {self._limits.max_image_bytes}"
            )
        info = imaging.inspect_image(data, self._limits.max_image_pixels, sha256)
        record = ImageRecord(
            image_id=image_id,
            status=Status.NOT_CLASSIFIED,
            image=info,
            submitted_at=self._clock(),
            source_url=source_url,
            webhook=webhook,
        )
        # Image first, record second: a record never points at a missing image. The image
        # has its own id, so removing it never touches another record's (DuplicateImage).
        self._store.put(record.image_id, data, imaging.media_type(info.format))
        try:
            self._table.insert(record, unique_bytes=unique_bytes)
        except BaseException:
            self._store.delete(record.image_id)
            raise
        log.info(
            "image accepted",
            extra={
                "image_id": record.image_id,
                "status": record.status.value,
                "format": info.format,
                "size_bytes": len(data),
                "width": info.width,
                "height": info.height,
                "source": "upload" if source_url is None else "url",
            },
        )
        self._metrics.record("ImagesSubmitted", 1, "Count")
        self._metrics.publish()
        return record

    def _resubmitted(self, known: ImageRecord) -> Submission:
        """The same bytes again: the first submission's answer, labelled once. A FAILED one
        is given another chance, since its failure may have been the model's."""
        if known.status is Status.FAILED:
            reopened = self._table.reopen(known.image_id)
            if reopened is not None:
                log.info(
                    "failed image resubmitted",
                    extra={"image_id": known.image_id, "status": reopened.status.value},
                )
                return Submission(reopened, created=True)
        log.info(
            "image resubmitted",
            extra={"image_id": known.image_id, "status": known.status.value},
        )
        return Submission(known, created=False)

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

    def _pending_images(
        self, image_ids: list[str], report: LabelReport
    ) -> tuple[list[ImageRecord], list[bytes]]:
        pending: list[ImageRecord] = []
        images: list[bytes] = []
        for image_id in image_ids:
            record = self._table.get(image_id)
            if record is None or record.status is not Status.NOT_CLASSIFIED:
                report.skipped.append(image_id)
                continue
            if record.webhook is not None:
                report.with_callback.add(image_id)
            try:
                images.append(self._store.get(image_id))
            except StoredImageMissing:
                self._finish(record, LabelOutcome(error="the stored image is missing"), report)
                continue
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
            if attempts >= self._max_attempts:
                error = f"the model failed {attempts} times; last error: {reason}"
                self._finish(record, LabelOutcome(error=error), report)
            else:
                report.retry.append(record.image_id)


def _batch_keys(asked: list[str], report: LabelReport, started: float) -> dict[str, object]:
    return {
        "batch_size": len(asked),
        "classified": len(report.classified),
        "failed": len(report.failed),
        "retry": len(report.retry),
        "skipped": len(report.skipped),
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }


class _NoMetrics:
    def record(self, name: str, value: float, unit: str) -> None:
        pass

    def publish(self) -> None:
        pass


def _checked_url(url: object, name: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest(f"`{name}` must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"`{name}` is longer than {MAX_URL_LENGTH} characters")
    return url.strip()


def upload_key(image_id: str) -> str:
    """Where a direct upload lands before it is registered (S3 notifies on this prefix)."""
    return f"uploads/{image_id}"


def _is_image_media_type(media: str) -> bool:
    media = media.split(";")[0].strip().lower()
    return media.startswith("image/") or media == "application/octet-stream"


def _looks_like_id(image_id: str) -> bool:
    try:
        return str(uuid.UUID(image_id)) == image_id
    except ValueError:
        return False
