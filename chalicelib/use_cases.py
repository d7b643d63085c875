"""The three use-case services, wired to one set of ports: what the entry points call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.config import Limits
from chalicelib.domain.models import utc_now
from chalicelib.intake import ImageIntake
from chalicelib.labelling import (
    Callbacks,
    LabellingPolicy,
    LabellingService,
    TransientCheck,
    no_error_is_transient,
)
from chalicelib.ports import (
    CallbackSender,
    Fetcher,
    ImageStore,
    Labeller,
    LabelTable,
    Metrics,
    Notifier,
    Storage,
)
from chalicelib.records import RecordService
from chalicelib.submission import SubmissionService, new_image_id
from chalicelib.uploads import UploadService


@dataclass(frozen=True)
class UseCases:
    submission: SubmissionService
    uploads: UploadService
    labelling: LabellingService
    records: RecordService


def wire(
    store: ImageStore,
    table: LabelTable,
    labeller: Labeller,
    fetcher: Fetcher,
    limits: Limits,
    top_k: int = 10,
    max_attempts: int = 3,
    clock: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = new_image_id,
    metrics: Metrics | None = None,
    callbacks: CallbackSender | None = None,
    notifier: Notifier | None = None,
    is_transient: TransientCheck = no_error_is_transient,
) -> UseCases:
    storage = Storage(store, table)
    intake = ImageIntake(storage, limits, metrics, clock)
    return UseCases(
        submission=SubmissionService(storage, intake, fetcher, new_id),
        uploads=UploadService(storage, intake, limits, clock, new_id),
        labelling=LabellingService(
            storage,
            labeller,
            LabellingPolicy(top_k=top_k, max_attempts=max_attempts),
            Callbacks(notifier=notifier, sender=callbacks),
            metrics,
            clock,
            is_transient,
        ),
        records=RecordService(storage),
    )
