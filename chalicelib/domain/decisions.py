"""The rules that decide what happens to a record: pure functions of its state."""

from __future__ import annotations

import enum
import hashlib
import uuid

from chalicelib.domain.models import REFUSED_FORMAT, ImageRecord, Status, WebhookStatus


class AfterModelOutage(enum.Enum):
    """What becomes of an image whose model call failed as a whole."""

    RETRY = "retry"  # the stream delivers the batch again
    FAIL = "fail"  # its attempts are used up: FAILED, with the last error


def after_model_outage(attempts: int, max_attempts: int) -> AfterModelOutage:
    """`attempts` counts the failed one that just happened."""
    return AfterModelOutage.FAIL if attempts >= max_attempts else AfterModelOutage.RETRY


def may_relabel(record: ImageRecord) -> bool:
    """A finished image may be labelled again; one being labelled may not (yet)."""
    return record.status is not Status.NOT_CLASSIFIED


def resubmit_reopens(record: ImageRecord) -> bool:
    """The same bytes submitted again give a FAILED image another chance: its failure may
    have been the model's, or a damaged stored file's that the resubmit repaired."""
    return record.status is Status.FAILED


def holds_an_image(record: ImageRecord) -> bool:
    """False for the record of refused upload bytes: nothing of them was stored, so the
    same bytes submitted again are judged anew rather than answered with that record."""
    return record.image.format != REFUSED_FORMAT


def callback_pending(record: ImageRecord) -> bool:
    return record.webhook is not None and record.webhook.status is WebhookStatus.PENDING


def is_same_upload(known: ImageRecord, sha256: str) -> bool:
    """Bytes PUT again to an upload URL are the same upload if they have its digest."""
    return known.image.sha256 == sha256


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def looks_like_image_id(image_id: str) -> bool:
    """Image ids are UUIDs in their canonical spelling; nothing else is ever looked up."""
    try:
        return str(uuid.UUID(image_id)) == image_id
    except ValueError:
        return False
