"""The redrive: read every message of the failure queue, read its batch's records back
from the stream, and hand the images that are still NOT_CLASSIFIED to the labelling
function again. A message is deleted only once its images were handed over; one whose
records left the stream (24 hours) is kept and reported, unless the table scan fallback
(`scan_older_than`) covered its images."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.events.stream import image_ids_to_label
from tools.redrive.failures import FailedBatch, NotAFailureRecord, failed_batch
from tools.redrive.invoker import InvocationFailed, LabellingInvoker
from tools.redrive.stream import RecordsExpired, StreamRecords, labelling_event
from tools.redrive.table import PENDING, ImageStatuses

FAILURE_QUEUE = "imagelabeller-labelling-failed"
# Images per invocation: the stream mapping's batch size (app.py).
CHUNK = 16
# Messages stay hidden from other readers this long while a run works on them; those it
# keeps are made visible again at its end.
VISIBILITY_SECONDS = 3600


@dataclass
class RedriveReport:
    """What a run did (a dry run: what it would have done)."""

    redriven: list[str] = field(default_factory=list)  # message ids handled (deleted)
    kept: dict[str, str] = field(default_factory=dict)  # message id -> why it was kept
    relabelled: list[str] = field(default_factory=list)  # image ids handed over
    finished: list[str] = field(default_factory=list)  # image ids done already (or gone)


@dataclass
class Redrive:
    sqs: Any
    queue_url: str
    stream: StreamRecords
    table: ImageStatuses
    invoker: LabellingInvoker
    region: str
    say: Callable[[str], None]
    dry_run: bool = False
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def run(self, scan_older_than: timedelta | None = None) -> RedriveReport:
        report = RedriveReport()
        received: dict[str, str] = {}  # message id -> latest receipt handle
        expired: list[FailedBatch] = []
        for message in self._receive_all():
            message_id = str(message["MessageId"])
            received[message_id] = str(message["ReceiptHandle"])
            try:
                batch = failed_batch(message)
            except NotAFailureRecord as error:
                self._keep(report, message_id, str(error))
                continue
            self.say(f"message {message_id}: {batch.describe()}")
            try:
                records = self.stream.of(batch)
            except RecordsExpired:
                expired.append(batch)
                self._keep(
                    report,
                    message_id,
                    "its records have left the stream (24 hours); see --scan-older-than",
                )
                continue
            image_ids = list(dict.fromkeys(image_ids_to_label(records)))
            if self._hand_over(image_ids, batch.stream_arn, report, message_id):
                self._done(report, batch.message_id, batch.receipt_handle)
        if scan_older_than is not None:
            self._scan_fallback(scan_older_than, expired, report)
        self._make_visible_again(report, received)
        return report

    def _receive_all(self) -> Iterator[dict[str, Any]]:
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=VISIBILITY_SECONDS,
            )
            messages = answer.get("Messages", [])
            if not messages:
                return
            yield from messages

    def _hand_over(
        self, image_ids: list[str], stream_arn: str, report: RedriveReport, message_id: str
    ) -> bool:
        """Invoke labelling for the images still pending; False (message kept) if an
        invocation failed."""
        pending = []
        for image_id in image_ids:
            status = self.table.status(image_id)
            if status == PENDING:
                pending.append(image_id)
            else:
                report.finished.append(image_id)
                self.say(f"  {image_id}: {status or 'no record'}, nothing to do")
        for start in range(0, len(pending), CHUNK):
            chunk = pending[start : start + CHUNK]
            if self.dry_run:
                report.relabelled.extend(chunk)
                self.say(f"  would relabel {len(chunk)} image(s): {', '.join(chunk)}")
                continue
            try:
                self.invoker.invoke(labelling_event(chunk, stream_arn, self.region, self.now()))
            except InvocationFailed as error:
                self._keep(report, message_id, f"labelling raised: {error}")
                return False
            report.relabelled.extend(chunk)
            self.say(f"  relabelled {len(chunk)} image(s): {', '.join(chunk)}")
        return True

    def _scan_fallback(
        self, older_than: timedelta, expired: list[FailedBatch], report: RedriveReport
    ) -> None:
        cutoff = self.now() - older_than
        image_ids = self.table.pending_submitted_before(cutoff)
        self.say(
            f"table scan: {len(image_ids)} image(s) NOT_CLASSIFIED since before "
            f"{cutoff.isoformat(timespec='seconds')}"
        )
        stream_arn = expired[0].stream_arn if expired else ""
        if not self._hand_over(image_ids, stream_arn, report, "table scan"):
            return
        for batch in expired:
            if batch.last_arrival is not None and batch.last_arrival <= cutoff:
                report.kept.pop(batch.message_id, None)
                self._done(report, batch.message_id, batch.receipt_handle)

    def _done(self, report: RedriveReport, message_id: str, receipt_handle: str) -> None:
        report.redriven.append(message_id)
        if self.dry_run:
            self.say(f"  would delete message {message_id}")
            return
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt_handle)

    def _keep(self, report: RedriveReport, message_id: str, why: str) -> None:
        report.kept[message_id] = why
        self.say(f"  kept {message_id}: {why}")

    def _make_visible_again(self, report: RedriveReport, received: dict[str, str]) -> None:
        """Messages not deleted are visible again at once: for the alarm, and a next run."""
        for message_id, receipt_handle in received.items():
            if message_id in report.redriven and not self.dry_run:
                continue
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0
            )
