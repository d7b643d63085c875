"""Fault injection: every image accepted ends CLASSIFIED or FAILED, whatever breaks.

Each test submits through the service, drives the stream emulation through the same
handler path Lambda uses (stream records -> inserted ids -> service.label_images), injects
one fault, and then counts: images accepted == images CLASSIFIED + images FAILED.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.sqlite import SqliteChangeLog, SqliteDatabase, SqliteLabelTable
from chalicelib.config import Limits
from chalicelib.domain.errors import LabellerUnavailable, StorageFull
from chalicelib.domain.models import ImageRecord, LabelOutcome, Status
from chalicelib.events.stream import image_ids_to_label
from chalicelib.local.stream import LocalStreamPoller, SqliteStreamSource
from chalicelib.ports import Labeller
from chalicelib.use_cases import wire
from tests.support import TENANT, NoNetwork, jpeg_variant, photo_jpeg

BATCH = 4


class FaultyLabeller:
    """A real labeller with a fault on chosen calls (1-based)."""

    def __init__(self, inner: Labeller, fail_on: set[int], fault: Exception) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.fault = fault
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def label(self, images: Iterable[bytes], top_k: int) -> Iterable[LabelOutcome]:
        self.calls += 1
        if self.calls in self.fail_on:
            raise self.fault
        return self.inner.label(images, top_k)


class World:
    """A service on the embedded adapters plus the stream that feeds its handler."""

    def __init__(self, database: SqliteDatabase, store: FolderImageStore, labeller: Labeller):
        self.database = database
        self.table = SqliteLabelTable(database)
        self.service = wire(
            store=store,
            table=self.table,
            labeller=labeller,
            fetcher=NoNetwork(),
            limits=Limits(),
            max_attempts=3,
        )
        self.accepted: list[str] = []

    def handler(self, event: dict[str, Any], context: Any) -> None:
        self.service.labelling.label_images(image_ids_to_label(event["Records"]))

    def poller(
        self, handler: Callable[[dict[str, Any], Any], None] | None = None
    ) -> LocalStreamPoller:
        source = SqliteStreamSource(SqliteChangeLog(self.database), "arn:faults")
        return LocalStreamPoller(source, handler or self.handler, BATCH, poll_seconds=0.01)

    def submit(self, count: int) -> None:
        photos = [photo_jpeg("coffee"), photo_jpeg("chelsea"), photo_jpeg("motorcycle")]
        for index in range(count):
            photo = jpeg_variant(photos[index % 3], len(self.accepted))
            self.accepted.append(
                self.service.submission.submit_upload(TENANT, photo).record.image_id
            )

    def drain(self, poller: LocalStreamPoller | None = None, max_failures: int = 20) -> None:
        """Deliver until the stream is empty, retrying failed batches as Lambda would."""
        stream = poller or self.poller()
        failures = 0
        while True:
            try:
                if stream.deliver_pending() == 0:
                    return
            except Exception:
                failures += 1
                assert failures <= max_failures, "the stream never drained"

    def statuses(self) -> dict[str, Status]:
        records = [self.table.get(image_id) for image_id in self.accepted]
        return {r.image_id: r.status for r in records if isinstance(r, ImageRecord)}

    def assert_nothing_lost(self) -> dict[Status, int]:
        statuses = self.statuses()
        finished = [s for s in statuses.values() if s is not Status.NOT_CLASSIFIED]
        assert len(self.accepted) == len(statuses) == len(finished), statuses
        return {status: list(statuses.values()).count(status) for status in Status}


@pytest.fixture
def world_with(
    database: SqliteDatabase, folder_store: FolderImageStore
) -> Callable[[Labeller], World]:
    return lambda labeller: World(database, folder_store, labeller)


def test_labeller_down_in_the_middle_of_the_stream(
    world_with: Callable[[Labeller], World], tiny_labeller: OnnxLabeller
) -> None:
    world = world_with(FaultyLabeller(tiny_labeller, {2, 3}, LabellerUnavailable("down")))
    world.submit(10)
    world.drain()
    counts = world.assert_nothing_lost()
    assert counts[Status.CLASSIFIED] == 10


def test_labeller_down_for_good_ends_failed_not_stuck(
    world_with: Callable[[Labeller], World], tiny_labeller: OnnxLabeller
) -> None:
    world = world_with(FaultyLabeller(tiny_labeller, set(range(1, 100)), LabellerUnavailable("x")))
    world.submit(6)
    world.drain()
    assert world.assert_nothing_lost()[Status.FAILED] == 6


def test_labeller_crashing_with_an_unexpected_error_is_retried(
    world_with: Callable[[Labeller], World], tiny_labeller: OnnxLabeller
) -> None:
    world = world_with(FaultyLabeller(tiny_labeller, {1}, RuntimeError("segfault-ish")))
    world.submit(5)
    world.drain()
    assert world.assert_nothing_lost()[Status.CLASSIFIED] == 5


def test_crash_after_part_of_a_batch_was_written(
    world_with: Callable[[Labeller], World], tiny_labeller: OnnxLabeller
) -> None:
    world = world_with(tiny_labeller)
    world.submit(BATCH * 2)
    crashed: list[list[str]] = []

    def crash_after_labelling(event: dict[str, Any], context: Any) -> None:
        ids = image_ids_to_label(event["Records"])
        if not crashed:
            world.service.labelling.label_images(
                ids[:2]
            )  # half the batch is written, then the crash
            crashed.append(ids)
            raise RuntimeError("the process died")
        world.handler(event, context)

    world.drain(world.poller(crash_after_labelling))
    assert world.assert_nothing_lost()[Status.CLASSIFIED] == BATCH * 2


def test_replayed_batches_change_nothing(
    world_with: Callable[[Labeller], World], tiny_labeller: OnnxLabeller
) -> None:
    world = world_with(tiny_labeller)
    world.submit(BATCH)
    events: list[dict[str, Any]] = []

    def recording(event: dict[str, Any], context: Any) -> None:
        events.append(event)
        world.handler(event, context)

    world.drain(world.poller(recording))
    before = {image_id: world.table.get(image_id) for image_id in world.accepted}
    for event in events:
        world.handler(event, None)
    assert {image_id: world.table.get(image_id) for image_id in world.accepted} == before
    world.assert_nothing_lost()


class BarrierLabeller:
    """Holds every call until `parties` workers are inside: all have read the same records
    as pending before any of them writes, so their writes really conflict."""

    def __init__(self, inner: Labeller, parties: int) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=30)

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def label(self, images: Iterable[bytes], top_k: int) -> Iterable[LabelOutcome]:
        self.barrier.wait()
        return self.inner.label(images, top_k)


def test_two_workers_labelling_the_same_batch_write_each_result_once(
    world_with: Callable[[Labeller], World], tiny_labeller: OnnxLabeller
) -> None:
    world = world_with(BarrierLabeller(tiny_labeller, parties=2))
    world.submit(BATCH)
    reports = []

    def worker() -> None:
        reports.append(world.service.labelling.label_images(world.accepted))

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert world.assert_nothing_lost()[Status.CLASSIFIED] == BATCH
    assert sum(len(report.classified) for report in reports) == BATCH  # the winners
    assert sum(len(report.skipped) for report in reports) == BATCH  # the losers' writes
    finishing_writes = world.database.query(
        "SELECT image_id, COUNT(*) FROM stream_log WHERE event_name = 'MODIFY'"
        " AND json_extract(new_item, '$.Status') != 'NOT_CLASSIFIED' GROUP BY image_id"
    )
    assert sorted(count for _, count in finishing_writes) == [1] * BATCH


def test_store_failing_after_a_fetch_accepts_nothing_and_leaves_no_record(
    database: SqliteDatabase,
    tmp_path: Any,
    tiny_labeller: OnnxLabeller,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def disk_full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    store = FolderImageStore(tmp_path / "images")
    world = World(database, store, tiny_labeller)
    monkeypatch.setattr(os, "fsync", disk_full)  # the image file's write reaches the disk
    with pytest.raises(StorageFull):
        world.submit(1)
    monkeypatch.undo()
    assert database.query("SELECT COUNT(*) FROM images") == [(0,)]
    assert list((tmp_path / "images").iterdir()) == []  # not even a temporary file
    assert world.accepted == []
    world.assert_nothing_lost()
