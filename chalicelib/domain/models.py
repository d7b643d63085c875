"""The records ImageLabeller keeps: plain data, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

LEGACY_LABEL_COUNT = 5
# The tenant of records the keyless legacy routes make, and of every record made before
# records had tenants (the migration writes it on them).
LEGACY_TENANT = "legacy"
# The format of refused upload bytes' record: they were never stored as an image.
REFUSED_FORMAT = "unknown"


class Status(enum.StrEnum):
    NOT_CLASSIFIED = "NOT_CLASSIFIED"
    CLASSIFIED = "CLASSIFIED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Label:
    name: str
    score: float


@dataclass(frozen=True)
class ImageInfo:
    """What decoding the header told us about a stored image."""

    format: str
    width: int
    height: int
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class LabelOutcome:
    """The labeller's answer for one image: labels, or why there are none."""

    labels: tuple[Label, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class PreviousResult:
    """What a record said before it was sent to be labelled again."""

    status: Status
    labels: tuple[Label, ...]
    model: str | None
    labelled_at: datetime | None


class WebhookStatus(enum.StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class WebhookState:
    """The callback a submitter asked for, and how its delivery went."""

    url: str
    status: WebhookStatus = WebhookStatus.PENDING
    attempts: int = 0
    last_attempt_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Delivery:
    """How a webhook delivery ended, to be recorded with the image."""

    delivered: bool
    attempts: int
    last_status: int | None  # the last attempt's HTTP status; None if it got none
    last_error: str | None  # why the last attempt did not deliver; None if it did
    last_attempt_at: datetime  # UTC


@dataclass(frozen=True)
class UploadTarget:
    """Where a client uploads image bytes itself: an HTML form POST (multipart/form-data)
    to `url` with `fields`, in order, followed by the bytes as the form's last field,
    `file` (S3's presigned POST; local mode takes the same form)."""

    url: str
    fields: dict[str, str]


@dataclass(frozen=True)
class UploadTicket:
    image_id: str
    target: UploadTarget
    expires_at: datetime


@dataclass(frozen=True)
class LabelHit:
    """One image found by label: GET /labels/{name}/images."""

    image_id: str
    score: float


@dataclass(frozen=True)
class ImageRecord:
    image_id: str
    status: Status
    image: ImageInfo
    submitted_at: datetime
    # Who submitted it: only keys of this tenant see it, find it, or dedupe against it.
    tenant: str = LEGACY_TENANT
    source_url: str | None = None
    labels: tuple[Label, ...] = ()
    model: str | None = None
    error: str | None = None
    labelled_at: datetime | None = None
    attempts: int = 0
    previous: PreviousResult | None = None
    webhook: WebhookState | None = None

    @property
    def legacy_label(self) -> str:
        return legacy_label(self.status, self.labels)


def legacy_label(status: Status, labels: tuple[Label, ...]) -> str:
    """The original GetImageLabel answer: top-5 names joined by ', ', or the status."""
    if status is Status.CLASSIFIED:
        return ", ".join(label.name for label in labels[:LEGACY_LABEL_COUNT])
    return str(status.value)


def utc_now() -> datetime:
    return datetime.now(UTC)


def without_secrets(url: str) -> str:
    """`url` without what commonly carries credentials: the user info, the query (presigned
    signatures, API keys) and the fragment. What records keep and readers see of a URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
