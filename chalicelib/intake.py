"""Taking an image in: the checks every new image passes (size, format, pixels, whole
file), then the image stored and its record inserted, in that order, so that a record
never points at a missing image and no call removes an image it did not store. Shared by
submission (URLs, bytes) and direct uploads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from chalicelib.config import Limits
from chalicelib.domain import imaging
from chalicelib.domain.decisions import sha256_hex
from chalicelib.domain.errors import (
    Conflict,
    DuplicateImageId,
    ImageIdTaken,
    ImageTooLarge,
    StoredImageMissing,
)
from chalicelib.domain.models import ImageRecord, Status, WebhookState, utc_now
from chalicelib.ports import Metrics, NoMetrics, Storage

log = logging.getLogger(__name__)

# Tries of a store whose image is removed again while it is being stored.
STORE_ATTEMPTS = 3


class ImageIntake:
    def __init__(
        self,
        storage: Storage,
        limits: Limits,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = storage.store
        self._table = storage.table
        self._limits = limits
        self._metrics = metrics or NoMetrics()
        self._clock = clock

    def store_new(
        self,
        tenant: str,
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
            tenant=tenant,
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
            self.ensure_stored(record, data)
        log.info(
            "image accepted",
            extra={
                "image_id": record.image_id,
                "tenant": tenant,
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
        for _ in range(STORE_ATTEMPTS):
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

    def ensure_stored(self, record: ImageRecord, data: bytes) -> None:
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
