"""Submission, the first flow of DESIGN.md: an image comes in (a URL to fetch, uploaded
bytes, or a direct upload's PUT), is checked, stored, and gets a NOT_CLASSIFIED record,
which puts it on the stream for labelling. The same bytes again get the first record.

Talks only to the ports; bootstrap.py hands in the adapters.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.config import Limits
from chalicelib.domain import imaging
from chalicelib.domain.decisions import is_same_upload, resubmit_reopens, sha256_hex
from chalicelib.domain.errors import (
    Conflict,
    DuplicateImage,
    DuplicateImageId,
    ImageIdTaken,
    ImageLabellerError,
    ImageTooLarge,
    InvalidRequest,
    StorageFull,
    StoredImageMissing,
)
from chalicelib.domain.models import (
    ImageInfo,
    ImageRecord,
    Status,
    UploadTicket,
    WebhookState,
    utc_now,
    without_secrets,
)
from chalicelib.ports import Fetcher, Metrics, NoMetrics, Storage

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

    url: str
    submission: Submission | None = None
    error: ImageLabellerError | None = None


class UploadConflict(Conflict):
    """An upload URL used again, for bytes other than those registered under its id."""

    def __init__(self, message: str, record: ImageRecord | None) -> None:
        super().__init__(message)
        self.record = record


def new_image_id() -> str:
    return str(uuid.uuid4())


class SubmissionService:
    def __init__(
        self,
        storage: Storage,
        fetcher: Fetcher,
        limits: Limits,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = new_image_id,
    ) -> None:
        self._store = storage.store
        self._table = storage.table
        self._fetcher = fetcher
        self._limits = limits
        self._metrics = metrics or NoMetrics()
        self._clock = clock
        self._new_id = new_id

    def submit_url(self, url: str, callback_url: str | None = None) -> Submission:
        url = _checked_url(url, "url")
        webhook = self._webhook(callback_url)
        data = self._fetcher.fetch(url)
        return self._accept(data, source_url=without_secrets(url), webhook=webhook)

    def submit_upload(self, data: bytes, callback_url: str | None = None) -> Submission:
        return self._accept(data, source_url=None, webhook=self._webhook(callback_url))

    def submit_batch(self, urls: Sequence[str], callback_url: str | None = None) -> list[BatchItem]:
        """Several URLs at once, fetched concurrently; each gets its own answer, so one bad
        URL does not fail the others."""
        if not 1 <= len(urls) <= MAX_BATCH_URLS:
            raise InvalidRequest(f"`urls` must be a list of 1 to {MAX_BATCH_URLS} URLs")
        self._webhook(callback_url)  # a bad callback refuses the whole batch
        with ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="batch") as pool:
            return list(pool.map(lambda url: self._batch_item(url, callback_url), urls))

    def _batch_item(self, url: str, callback_url: str | None) -> BatchItem:
        try:
            return BatchItem(url=url, submission=self.submit_url(url, callback_url))
        except ImageLabellerError as error:
            return BatchItem(url=url, error=error)

    def _webhook(self, callback_url: str | None) -> WebhookState | None:
        """The callback asked for, checked against the fetch rules before anything else."""
        if callback_url is None:
            return None
        url = _checked_url(callback_url, "callback_url")
        self._fetcher.check_url(url)
        return WebhookState(url=url)

    def start_upload(self, content_type: str | None) -> UploadTicket:
        """A place to PUT a large image directly (past API Gateway's request limit). Once
        the bytes arrive there, register_upload makes the image under this id."""
        media = content_type if content_type is not None else "application/octet-stream"
        if not _is_image_media_type(media):
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
        digest = sha256_hex(data)
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
            image=ImageInfo("unknown", 0, 0, len(data), sha256_hex(data)),
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
        digest = sha256_hex(data)
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
            if sha256_hex(stored) == record.image.sha256:
                return False
            raise ImageIdTaken(record.image_id)
        raise Conflict("the image was stored and removed again meanwhile; try again")

    def _ensure_stored(self, record: ImageRecord, data: bytes) -> None:
        """Make the stored image of `record` be `data` (bytes of its digest): a missing or
        damaged stored file is replaced with them."""
        try:
            if sha256_hex(self._store.get(record.image_id)) == record.image.sha256:
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
        if resubmit_reopens(known):
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


def _checked_url(url: str, name: str) -> str:
    if not url.strip():
        raise InvalidRequest(f"`{name}` must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"`{name}` is longer than {MAX_URL_LENGTH} characters")
    return url.strip()


def _same_upload(known: ImageRecord, digest: str) -> Submission:
    """The answer to an upload URL used again: its record, if the bytes are the same."""
    if not is_same_upload(known, digest):
        raise UploadConflict("this upload URL was used already, for other bytes", known)
    return Submission(known, created=False)


def upload_key(image_id: str) -> str:
    """Where a direct upload lands before it is registered (S3 notifies on this prefix)."""
    return f"uploads/{image_id}"


def _is_image_media_type(media: str) -> bool:
    media = media.split(";")[0].strip().lower()
    return media.startswith("image/") or media == "application/octet-stream"
