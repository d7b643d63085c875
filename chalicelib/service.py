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

from chalicelib.config import Limits
from chalicelib.domain import imaging
from chalicelib.domain.errors import (
    Conflict,
    DuplicateImage,
    DuplicateImageId,
    ImageIdTaken,
    ImageLabellerError,
    ImageNotFound,
    ImageTooLarge,
    InvalidRequest,
    LabellerUnavailable,
    StorageFull,
    StoredImageMissing,
)
from chalicelib.domain.models import (
    ImageInfo,
    ImageRecord,
    LabelHit,
    LabelOutcome,
    Status,
    UploadTicket,
    WebhookState,
    WebhookStatus,
    utc_now,
    without_secrets,
)
from chalicelib.domain.record_json import record_body
from chalicelib.ports import (
    CallbackSender,
    Fetcher,
    ImageStore,
    Labeller,
    LabelTable,
    Metrics,
    Notifier,
)

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 2048
# Fetched concurrently within one request: API Gateway gives a request 29 s in all.
MAX_BATCH_URLS = 10
# How long an upload URL stays valid.
UPLOAD_SECONDS = 900
# Tries of a submit whose bytes' first record is deleted while the submit looks for it.
ACCEPT_ATTEMPTS = 3
DAMAGED_IMAGE = (
    "the stored image is damaged (its bytes no longer match their sha256); "
    "submit the same image again to replace it"
)


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
    # Images of this batch, finished now or before, whose callback is still to be sent.
    with_callback: set[str] = field(default_factory=set)


class UploadConflict(Conflict):
    """An upload URL used again, for bytes other than those registered under its id."""

    def __init__(self, message: str, record: ImageRecord | None) -> None:
        super().__init__(message)
        self.record = record


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
        notifier: Notifier | None = None,
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
        self._notifier = notifier

    def submit_url(self, url: object, callback_url: object = None) -> Submission:
        url = _checked_url(url, "url")
        webhook = self._webhook(callback_url)
        data = self._fetcher.fetch(url)
        return self._accept(data, source_url=without_secrets(url), webhook=webhook)

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
        self._queue_callbacks(report)
        return report

    def _queue_callbacks(self, report: LabelReport) -> None:
        """Hand the finished images' callbacks to the delivery queue: a slow receiver then
        delays only its own delivery, never labelling. Images met again already finished
        (a replayed batch) are queued again, in case the first queueing was lost."""
        finished = set(report.classified + report.failed + report.skipped)
        image_ids = sorted(report.with_callback & finished)
        if not image_ids:
            return
        if self._notifier is None:
            for image_id in image_ids:
                self._record_undeliverable(image_id, "this deployment has no webhook queue")
            return
        self._notifier.notify(image_ids)

    def deliver_callbacks(self, image_ids: Sequence[str]) -> None:
        """POST each finished record to its callback URL and write down how it went; called
        by the delivery queue's handler. Only callbacks still PENDING are sent, so a message
        delivered twice sends once (unless two deliveries run at the very same time).
        Delivery problems are recorded on the image, never raised."""
        for image_id in dict.fromkeys(image_ids):
            record = self._table.get(image_id)
            if record is None or record.webhook is None:
                continue
            if record.webhook.status is not WebhookStatus.PENDING:
                continue
            if record.status is Status.NOT_CLASSIFIED:
                continue  # sent back to labelling since it was queued: it will be queued again
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

    def _record_undeliverable(self, image_id: str, reason: str) -> None:
        record = self._table.get(image_id)
        if record is None or record.webhook is None:
            return
        failed = replace(record.webhook, status=WebhookStatus.FAILED, last_error=reason)
        self._table.record_delivery(image_id, failed)

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
        """The bytes a client PUT to its upload URL (`uploads/<id>`, as S3 reports them),
        registered by `receive_upload`; then the uploaded object is removed. A replayed or
        late notification changes nothing; bytes that differ from the id's record are
        dropped. None if nothing was uploaded under the id."""
        try:
            data = self._store.get(upload_key(image_id))
        except StoredImageMissing:
            return self._table.get(image_id)
        record: ImageRecord | None
        try:
            record = self.receive_upload(image_id, data).record
        except UploadConflict as conflict:
            log.warning("upload dropped", extra={"image_id": image_id, "error": conflict.message})
            record = conflict.record
        self._store.delete(upload_key(image_id))
        return record

    def receive_upload(self, image_id: str, data: bytes) -> Submission:
        """The bytes of a direct upload, checked and queued like any submitted image under
        the ticket's id. Bytes we refuse make a FAILED record saying why (on AWS the client
        can no longer be answered with a 4xx).

        The same URL used again (a client retrying a timed-out PUT, at once or later) gets
        the first record if its bytes are the same, and UploadConflict if they differ."""
        digest = _digest(data)
        for _ in range(ACCEPT_ATTEMPTS):
            known = self._table.get(image_id)
            if known is not None:
                return _same_upload(known, digest)
            try:
                record = self._store_new(
                    data, source_url=None, image_id=image_id, sha256=digest, unique_bytes=False
                )
            except ImageIdTaken:
                raise UploadConflict(
                    "another upload to this URL, of other bytes, came first", None
                ) from None
            except DuplicateImageId:
                continue  # the other upload's record is there now: answer from it
            except StorageFull:
                raise
            except ImageLabellerError as error:
                record = self._refused_upload(image_id, data, error)
                try:
                    self._table.insert(record, unique_bytes=False)
                except DuplicateImageId:
                    continue
                log.warning(
                    "upload refused",
                    extra={
                        "image_id": image_id,
                        "status": record.status.value,
                        "size_bytes": len(data),
                        "error": record.error,
                    },
                )
            return Submission(record, created=True)
        raise Conflict("the upload changed while it was being registered; try again")

    def _refused_upload(self, image_id: str, data: bytes, error: ImageLabellerError) -> ImageRecord:
        now = self._clock()
        return ImageRecord(
            image_id=image_id,
            status=Status.FAILED,
            image=ImageInfo("unknown", 0, 0, len(data), _digest(data)),
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
        digest = _digest(data)
        for _ in range(ACCEPT_ATTEMPTS):
            known = self._table.find_by_sha256(digest)
            if known is not None:
                return self._resubmitted(known, data)
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
                return self._resubmitted(first, data)
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
        # Image first, record second: a record never points at a missing image.
        created = self._store_image(record, data)
        try:
            self._table.insert(record, unique_bytes=unique_bytes)
        except DuplicateImageId:
            raise  # the id's record may be using the stored image: it is not ours to remove
        except BaseException:
            if created:
                self._store.delete(record.image_id)
            raise
        if not created:
            # Stored by another registration of the same upload, which may yet fail and
            # remove it: this record's image must stay.
            self._ensure_stored(record, data)
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

    def _store_image(self, record: ImageRecord, data: bytes) -> bool:
        """Store the image under its id unless something is stored there; True if this call
        stored it. The same bytes stored already (a concurrent registration of one upload)
        are used as they are; other bytes raise ImageIdTaken. Nothing stored by another
        call is ever replaced or removed here."""
        media = imaging.media_type(record.image.format)
        for _ in range(ACCEPT_ATTEMPTS):
            if self._store.put_new(record.image_id, data, media):
                return True
            try:
                stored = self._store.get(record.image_id)
            except StoredImageMissing:
                continue  # removed since: store ours
            if _digest(stored) == record.image.sha256:
                return False
            raise ImageIdTaken(record.image_id)
        raise Conflict("the image was stored and removed again meanwhile; try again")

    def _ensure_stored(self, record: ImageRecord, data: bytes) -> None:
        """Make the stored image of `record` be `data` (bytes of its digest): a missing or
        damaged stored file is replaced with them."""
        try:
            if _digest(self._store.get(record.image_id)) == record.image.sha256:
                return
            problem = "damaged"
        except StoredImageMissing:
            problem = "missing"
        self._store.put(record.image_id, data, imaging.media_type(record.image.format))
        log.warning(
            "stored image replaced", extra={"image_id": record.image_id, "problem": problem}
        )

    def _resubmitted(self, known: ImageRecord, data: bytes) -> Submission:
        """The same bytes again: the first submission's answer, labelled once. Its stored
        image is checked, and a damaged one replaced with these bytes. A FAILED one is given
        another chance, since its failure may have been the model's or the damage's."""
        self._ensure_stored(known, data)
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
            if record is not None and _callback_pending(record):
                report.with_callback.add(image_id)
            if record is None or record.status is not Status.NOT_CLASSIFIED:
                report.skipped.append(image_id)
                continue
            try:
                data = self._store.get(image_id)
            except StoredImageMissing:
                self._finish(record, LabelOutcome(error="the stored image is missing"), report)
                continue
            if _digest(data) != record.image.sha256:
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


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _callback_pending(record: ImageRecord) -> bool:
    return record.webhook is not None and record.webhook.status is WebhookStatus.PENDING


def _same_upload(known: ImageRecord, digest: str) -> Submission:
    """The answer to an upload URL used again: its record, if the bytes are the same."""
    if known.image.sha256 != digest:
        raise UploadConflict("this upload URL was used already, for other bytes", known)
    return Submission(known, created=False)


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
