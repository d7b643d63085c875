"""Submission, the first flow of DESIGN.md: an image comes in (a URL to fetch, or bytes),
is checked, stored, and gets a NOT_CLASSIFIED record, which puts it on the stream for
labelling. The same bytes again, from the same tenant, get the first record; every
record is its submitter's tenant's. Direct uploads: uploads.py.

Talks only to the ports; bootstrap.py hands in the adapters.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from chalicelib.domain.decisions import holds_an_image, resubmit_reopens, sha256_hex
from chalicelib.domain.errors import (
    Conflict,
    DuplicateImage,
    ImageLabellerError,
    InvalidRequest,
)
from chalicelib.domain.models import (
    ImageRecord,
    WebhookState,
    without_secrets,
)
from chalicelib.intake import ImageIntake
from chalicelib.ports import Fetcher, Storage

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 2048
# Fetched concurrently within one request: API Gateway gives a request 29 s in all.
MAX_BATCH_URLS = 10
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


def new_image_id() -> str:
    return str(uuid.uuid4())


class SubmissionService:
    def __init__(
        self,
        storage: Storage,
        intake: ImageIntake,
        fetcher: Fetcher,
        new_id: Callable[[], str] = new_image_id,
    ) -> None:
        self._table = storage.table
        self._intake = intake
        self._fetcher = fetcher
        self._new_id = new_id

    def submit_url(self, tenant: str, url: str, callback_url: str | None = None) -> Submission:
        url = _checked_url(url, "url")
        webhook = self._webhook(callback_url)
        data = self._fetcher.fetch(url)
        return self._accept(tenant, data, source_url=without_secrets(url), webhook=webhook)

    def submit_upload(
        self, tenant: str, data: bytes, callback_url: str | None = None
    ) -> Submission:
        return self._accept(tenant, data, source_url=None, webhook=self._webhook(callback_url))

    def submit_batch(
        self, tenant: str, urls: Sequence[str], callback_url: str | None = None
    ) -> list[BatchItem]:
        """Several URLs at once, fetched concurrently; each gets its own answer, so one bad
        URL does not fail the others."""
        if not 1 <= len(urls) <= MAX_BATCH_URLS:
            raise InvalidRequest(f"`urls` must be a list of 1 to {MAX_BATCH_URLS} URLs")
        self._webhook(callback_url)  # a bad callback refuses the whole batch
        with ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="batch") as pool:
            return list(pool.map(lambda url: self._batch_item(tenant, url, callback_url), urls))

    def _batch_item(self, tenant: str, url: str, callback_url: str | None) -> BatchItem:
        try:
            return BatchItem(url=url, submission=self.submit_url(tenant, url, callback_url))
        except ImageLabellerError as error:
            return BatchItem(url=url, error=error)

    def _webhook(self, callback_url: str | None) -> WebhookState | None:
        """The callback asked for, checked against the fetch rules before anything else."""
        if callback_url is None:
            return None
        url = _checked_url(callback_url, "callback_url")
        self._fetcher.check_url(url)
        return WebhookState(url=url)

    def _accept(
        self, tenant: str, data: bytes, source_url: str | None, webhook: WebhookState | None
    ) -> Submission:
        """A new record for new bytes; for known bytes, the first record's answer.

        The lookup answers a resubmit cheaply (and finds records older than the table's
        claims). Two submits of the same new bytes at once both miss it and both store the
        image; the table lets one record claim the bytes, and the other submit removes its
        image and answers as a resubmit."""
        digest = sha256_hex(data)
        for _ in range(ACCEPT_ATTEMPTS):
            known = self._table.find_by_sha256(tenant, digest)
            if known is not None and holds_an_image(known):
                return self._resubmitted(known, data)
            try:
                record = self._intake.store_new(
                    tenant, data, source_url, self._new_id(), webhook, digest
                )
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

    def _resubmitted(self, known: ImageRecord, data: bytes) -> Submission:
        """The same bytes again: the first submission's answer, labelled once. Its stored
        image is checked, and a damaged one replaced with these bytes. A FAILED one is given
        another chance, since its failure may have been the model's or the damage's."""
        self._intake.ensure_stored(known, data)
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
