"""The records ImageLabeller keeps: plain data, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime

LEGACY_LABEL_COUNT = 5


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
class ImageRecord:
    image_id: str
    status: Status
    image: ImageInfo
    submitted_at: datetime
    source_url: str | None = None
    labels: tuple[Label, ...] = ()
    model: str | None = None
    error: str | None = None
    labelled_at: datetime | None = None
    attempts: int = 0

    @property
    def legacy_label(self) -> str:
        """The original GetImageLabel answer: top-5 names joined by ', ', or the status."""
        if self.status is Status.CLASSIFIED:
            return ", ".join(label.name for label in self.labels[:LEGACY_LABEL_COUNT])
        return str(self.status.value)

    def classified(self, labels: tuple[Label, ...], model: str, at: datetime) -> ImageRecord:
        return replace(
            self, status=Status.CLASSIFIED, labels=labels, model=model, error=None, labelled_at=at
        )

    def failed(self, error: str, model: str | None, at: datetime) -> ImageRecord:
        return replace(self, status=Status.FAILED, error=error, model=model, labelled_at=at)


def utc_now() -> datetime:
    return datetime.now(UTC)
