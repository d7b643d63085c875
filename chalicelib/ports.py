"""The interfaces the service talks to. Each has one adapter per backend in adapters/."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.api_keys import ApiKeyRecord
from chalicelib.domain.models import (
    Delivery,
    ImageRecord,
    Label,
    LabelHit,
    LabelOutcome,
    UploadTarget,
    WebhookState,
)


class ImageStore(Protocol):
    """Image bytes by image id (S3 bucket | folder)."""

    def put(self, image_id: str, data: bytes, content_type: str) -> None:
        """Store the bytes under `image_id`, replacing any stored there. Raises StorageFull
        when there is no room (nothing is stored then)."""
        ...

    def put_new(self, image_id: str, data: bytes, content_type: str) -> bool:
        """Store the bytes only if nothing is stored under `image_id` yet, atomically (two
        callers at once: one stores, the other gets False). True if this call stored them."""
        ...

    def get(self, image_id: str) -> bytes:
        """The stored bytes; raises StoredImageMissing if there are none."""
        ...

    def size(self, image_id: str) -> int:
        """How many bytes are stored, without reading them; raises StoredImageMissing if
        there are none."""
        ...

    def delete(self, image_id: str) -> None:
        """Remove the image; removing a missing one is not an error."""
        ...

    def upload_target(
        self, key: str, content_type: str, max_bytes: int, expires_in: int
    ) -> UploadTarget:
        """Where a client may upload the bytes of `key` itself, with a form POST, until
        `expires_in` seconds pass: a presigned S3 POST whose policy fixes the key and the
        Content-Type and refuses bodies over `max_bytes` | a signed URL of the local API."""
        ...


class LabelTable(Protocol):
    """Image records by id (DynamoDB `ImageLabels` | SQLite)."""

    def insert(self, record: ImageRecord, *, unique_bytes: bool = True) -> None:
        """Add a new record; this is what puts it on the stream.

        With `unique_bytes`, the record also claims its bytes (`record.image.sha256`) within
        its tenant in the same write: if another claiming record of the tenant has them
        (another tenant's never counts), nothing is written and
        DuplicateImage names that record. The claim ends when its record is deleted.
        Direct uploads insert without it (their id is given out before the bytes exist).
        Raises DuplicateImageId if the id is taken."""
        ...

    def get(self, image_id: str) -> ImageRecord | None: ...

    def complete(
        self, image_id: str, labels: tuple[Label, ...], model: str, at: datetime, *, tenant: str
    ) -> bool:
        """Mark CLASSIFIED if still NOT_CLASSIFIED, and index its labels in the search of
        `tenant`, which must be the record's; False (and no change) otherwise."""
        ...

    def fail(self, image_id: str, error: str, model: str | None, at: datetime) -> bool:
        """Mark FAILED if still NOT_CLASSIFIED; False (and no change) otherwise."""
        ...

    def count_attempt(self, image_id: str) -> int:
        """Add one to the record's labelling attempts and return the new count."""
        ...

    def find_by_sha256(self, tenant: str, sha256: str) -> ImageRecord | None:
        """A record of `tenant` of an image with these exact bytes, if there is one (another
        tenant's record of the same bytes is never the answer)."""
        ...

    def reopen(self, image_id: str) -> ImageRecord | None:
        """Send a CLASSIFIED or FAILED record to be labelled again, keeping its result as
        `previous` and taking it out of search. None (and no change) for any other record."""
        ...

    def delete(self, image_id: str) -> bool:
        """Remove the record and its search entries; False if there was none."""
        ...

    def record_delivery(self, image_id: str, webhook: WebhookState) -> None:
        """Write how the record's callback delivery went (no other attribute changes)."""
        ...

    def images_with_label(
        self, tenant: str, name: str, limit: int, after: str | None
    ) -> tuple[list[LabelHit], str | None]:
        """CLASSIFIED images of `tenant` labelled `name`, best score first, a page at a time.

        `after` is the token a previous page returned; raises InvalidPageToken for a token
        this table did not make. Returns the page and the next token (None at the end)."""
        ...


class KeyStore(Protocol):
    """API key records by key id (items of DynamoDB `ImageLabelIndex` | SQLite)."""

    def put_new(self, record: ApiKeyRecord) -> None:
        """Store a new key; raises DuplicateKeyId (and keeps the stored one) if its id is
        taken."""
        ...

    def get(self, key_id: str) -> ApiKeyRecord | None:
        """The key as stored now (a revocation is seen at once), or None."""
        ...

    def list(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        """Every key, or the tenant's, revoked ones too, oldest first."""
        ...

    def revoke(self, key_id: str, at: datetime) -> ApiKeyRecord | None:
        """Mark the key revoked at `at` unless it is already (then the first revocation
        stands, and revoking again changes nothing); the key as it now is, or None if no
        key has this id."""
        ...


class RequestRate(Protocol):
    """Requests per API key, a token bucket per key (in memory | DynamoDB items)."""

    def take(self, key_id: str, per_minute: int) -> float | None:
        """Count one request of the key against a bucket of `per_minute` tokens that refills
        at `per_minute` a minute. None if it had a token; otherwise the seconds until it has
        one (and nothing is counted)."""
        ...


class ImageQuota(Protocol):
    """Images accepted per API key per UTC day (SQLite | DynamoDB items)."""

    def reserve(self, key_id: str, day: str, count: int, limit: int) -> bool:
        """Add `count` to the key's images of `day` (YYYY-MM-DD) if the total stays within
        `limit`, atomically (two callers at once cannot both pass the limit); False, and
        nothing added, otherwise."""
        ...

    def release(self, key_id: str, day: str, count: int) -> None:
        """Give back `count` reserved images that were not accepted after all."""
        ...

    def used(self, key_id: str, day: str) -> int:
        """The key's images of `day` so far."""
        ...


class Labeller(Protocol):
    """An image classifier (ONNX in process | SageMaker endpoint)."""

    @property
    def model_id(self) -> str: ...

    def label(self, images: Iterable[bytes], top_k: int) -> Iterable[LabelOutcome]:
        """One outcome per image, in order, each as soon as it is ready (a list will do).
        `images` may be a generator that reads each image as it is asked for. Raises
        LabellerUnavailable, at once or while iterating, if the model itself cannot answer;
        an image it cannot read is an outcome with an error."""
        ...


class Fetcher(Protocol):
    """Downloads an image URL under the fetch rules (fetch.py)."""

    def fetch(self, url: str) -> bytes: ...

    def check_url(self, url: str) -> None:
        """Refuse (UrlNotAllowed) a URL the fetch rules would not reach, without connecting."""
        ...


class Notifier(Protocol):
    """Queues finished images for their callback, off the labelling path (SQS | SQLite).

    Delivery is at least once: an image may be queued again (a replayed stream batch), and
    the delivery handler sends only callbacks still PENDING."""

    def notify(self, image_ids: Sequence[str]) -> None: ...


class CallbackSender(Protocol):
    """POSTs a finished record to its callback URL, signed (webhooks.py)."""

    def deliver(self, url: str, payload: Mapping[str, Any]) -> Delivery: ...


class Metrics(Protocol):
    """Operational figures (CloudWatch embedded metric format | nothing)."""

    def record(self, name: str, value: float, unit: str) -> None:
        """Add one value; `unit` is a CloudWatch unit such as "Count" or "Milliseconds"."""
        ...

    def publish(self) -> None:
        """Emit what was recorded since the last publish."""
        ...


@dataclass(frozen=True)
class Storage:
    """Where an image lives: its bytes and its record, always used together."""

    store: ImageStore
    table: LabelTable


class NoMetrics:
    """Metrics port that keeps nothing (tests, tools)."""

    def record(self, name: str, value: float, unit: str) -> None:
        pass

    def publish(self) -> None:
        pass
