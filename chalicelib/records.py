"""The records once they exist: read one, search them by label, delete one, or send a
finished one back to be labelled again, each for one tenant: another tenant's record
answers exactly as a missing one does. Talks only to the ports."""

from __future__ import annotations

import logging

from chalicelib.domain.decisions import looks_like_image_id, may_relabel
from chalicelib.domain.errors import Conflict, ImageNotFound, InvalidRequest
from chalicelib.domain.models import ImageRecord, LabelHit
from chalicelib.ports import Storage

log = logging.getLogger(__name__)


class RecordService:
    def __init__(self, storage: Storage) -> None:
        self._store = storage.store
        self._table = storage.table

    def get(self, tenant: str, image_id: str) -> ImageRecord:
        record = self._table.get(image_id) if looks_like_image_id(image_id) else None
        if record is None or record.tenant != tenant:
            raise ImageNotFound(f"no image with id {image_id!r}")
        return record

    def delete(self, tenant: str, image_id: str) -> None:
        """Remove the record (and its search entries) first, then the stored image. A
        record's tenant never changes, so the one read here is the one deleted."""
        self.get(tenant, image_id)
        if not self._table.delete(image_id):
            raise ImageNotFound(f"no image with id {image_id!r}")
        self._store.delete(image_id)
        log.info("image deleted", extra={"image_id": image_id})

    def relabel(self, tenant: str, image_id: str) -> ImageRecord:
        """Label a finished image again with the current model; its last result is kept."""
        record = self.get(tenant, image_id)
        if not may_relabel(record):
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
        self, tenant: str, name: str, limit: int, page_token: str | None
    ) -> tuple[list[LabelHit], str | None]:
        if not name.strip():
            raise InvalidRequest("the label name is empty")
        return self._table.images_with_label(tenant, name, limit, page_token)
