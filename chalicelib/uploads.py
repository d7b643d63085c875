"""Direct uploads: an upload form for a large image (past API Gateway's request limit),
and the bytes POSTed with it registered under the ticket's id, as S3's notification (or
local mode's form POST) reports them. A form used again keeps the first image. Bytes over
the size limit are refused by S3 itself, and checked again, by size, before any read."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from chalicelib.config import Limits
from chalicelib.domain import imaging
from chalicelib.domain.decisions import is_same_upload, sha256_hex
from chalicelib.domain.errors import (
    Conflict,
    DuplicateImageId,
    ImageIdTaken,
    ImageLabellerError,
    ImageTooLarge,
    InvalidRequest,
    StorageFull,
    StoredImageMissing,
)
from chalicelib.domain.models import (
    REFUSED_FORMAT,
    ImageInfo,
    ImageRecord,
    Status,
    UploadTicket,
    utc_now,
)
from chalicelib.intake import ImageIntake
from chalicelib.ports import Storage
from chalicelib.submission import Submission, new_image_id

log = logging.getLogger(__name__)

# How long an upload URL stays valid.
UPLOAD_SECONDS = 900
# Tries of a registration that meets another registration of the same upload.
REGISTER_ATTEMPTS = 3
# The digest recorded for uploaded bytes refused unread (too large to read): the shape of
# a SHA-256 (the API documents that shape), and one no real bytes will ever hash to, so no
# other bytes are ever taken for them.
UNREAD_DIGEST = "0" * 64


class UploadConflict(Conflict):
    """An upload URL used again, for bytes other than those registered under its id."""

    def __init__(self, message: str, record: ImageRecord | None) -> None:
        super().__init__(message)
        self.record = record


class UploadService:
    def __init__(
        self,
        storage: Storage,
        intake: ImageIntake,
        limits: Limits,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = new_image_id,
    ) -> None:
        self._store = storage.store
        self._table = storage.table
        self._intake = intake
        self._max_bytes = limits.max_image_bytes
        self._clock = clock
        self._new_id = new_id

    def start_upload(self, tenant: str, content_type: str | None) -> UploadTicket:
        """A form to POST a large image with directly (past API Gateway's request limit),
        which refuses bodies over the image size limit. Once the bytes arrive there,
        register_upload makes the image under this id."""
        media = content_type if content_type is not None else "application/octet-stream"
        if not imaging.is_image_media_type(media):
            raise InvalidRequest("`content_type` must be image/* or application/octet-stream")
        image_id = self._new_id()
        target = self._store.upload_target(
            upload_key(tenant, image_id), media, self._max_bytes, UPLOAD_SECONDS
        )
        expires_at = self._clock() + timedelta(seconds=UPLOAD_SECONDS)
        return UploadTicket(image_id=image_id, target=target, expires_at=expires_at)

    def register_upload(
        self, tenant: str, image_id: str, size: int | None = None
    ) -> ImageRecord | None:
        """The bytes a client uploaded with its form (`uploads/<tenant>/<id>`, as S3
        reports them; the tenant is the one that asked for the form),
        registered by `receive_upload`; then the uploaded object is removed. A replayed or
        late notification changes nothing; bytes that differ from the id's record are
        dropped. None if nothing was uploaded under the id.

        `size` is the object's size as the notification gives it; without one the store
        is asked. An object over the size limit is never read: it is removed, and the id's
        record (if it has none yet) is FAILED, `image_too_large`."""
        key = upload_key(tenant, image_id)
        try:
            if size is None:
                size = self._store.size(key)
            if size > self._max_bytes:
                return self._refuse_unread(tenant, image_id, size)
            data = self._store.get(key)
        except StoredImageMissing:
            return self._table.get(image_id)
        record: ImageRecord | None
        try:
            record = self.receive_upload(tenant, image_id, data).record
        except UploadConflict as conflict:
            log.warning("upload dropped", extra={"image_id": image_id, "error": conflict.message})
            record = conflict.record
        self._store.delete(key)
        return record

    def receive_upload(self, tenant: str, image_id: str, data: bytes) -> Submission:
        """The bytes of a direct upload, checked and queued like any submitted image under
        the ticket's id. Bytes we refuse make a FAILED record saying why (on AWS the client
        can no longer be answered with a 4xx).

        The same form used again (a client retrying a timed-out POST, at once or later)
        gets the first record if its bytes are the same, and UploadConflict if they differ.
        The size check is the caller's: `register_upload` never reads an object over the
        limit, and local mode's form parser refuses one before it gets here."""
        digest = sha256_hex(data)
        for _ in range(REGISTER_ATTEMPTS):
            known = self._table.get(image_id)
            if known is not None:
                return _same_upload(known, tenant, digest)
            try:
                record = self._intake.store_new(
                    tenant,
                    data,
                    source_url=None,
                    image_id=image_id,
                    sha256=digest,
                    unique_bytes=False,
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
                record = self._refused_upload(tenant, image_id, error, len(data), digest)
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

    def _refuse_unread(self, tenant: str, image_id: str, size: int) -> ImageRecord | None:
        """An uploaded object too large to read: removed, and recorded as refused unless
        the id has a record already (an earlier upload with this form keeps it)."""
        error = ImageTooLarge(f"the image is {size} bytes; the limit is {self._max_bytes}")
        record = self._table.get(image_id)
        if record is None:
            refused = self._refused_upload(tenant, image_id, error, size, UNREAD_DIGEST)
            try:
                self._table.insert(refused, unique_bytes=False)
                record = refused
            except DuplicateImageId:
                record = self._table.get(image_id)
        log.warning(
            "upload refused unread",
            extra={
                "image_id": image_id,
                "size_bytes": size,
                "error": error.code,
                "status": None if record is None else record.status.value,
            },
        )
        self._store.delete(upload_key(tenant, image_id))
        return record

    def _refused_upload(
        self, tenant: str, image_id: str, error: ImageLabellerError, size: int, digest: str
    ) -> ImageRecord:
        now = self._clock()
        return ImageRecord(
            image_id=image_id,
            tenant=tenant,
            status=Status.FAILED,
            image=ImageInfo(REFUSED_FORMAT, 0, 0, size, digest),
            submitted_at=now,
            error=f"the upload was refused ({error.code}): {error.message}",
            labelled_at=now,
        )


def _same_upload(known: ImageRecord, tenant: str, digest: str) -> Submission:
    """The answer to an upload URL used again: its record, if the bytes are the same (and
    of the same tenant: ids are random, so another tenant's is never its record)."""
    if known.tenant != tenant:
        raise UploadConflict("this upload URL was used already, for other bytes", None)
    if not is_same_upload(known, digest):
        raise UploadConflict("this upload URL was used already, for other bytes", known)
    return Submission(known, created=False)


def upload_key(tenant: str, image_id: str) -> str:
    """Where a direct upload lands before it is registered (S3 notifies on `uploads/`): the
    tenant that asked for the form is in the key, which the form's signature fixes."""
    return f"uploads/{tenant}/{image_id}"
