"""The labelling worker alone, without HTTP, beside the in-process labeller it drives.

The worker: N images submitted through the service's own submission use case into a local
SQLite database and image folder (no stream worker running), then the local stream poller
(chalicelib/local/stream.py) delivers the change log's batches to the same handler code
Lambda runs, until every record is CLASSIFIED. The labeller: `OnnxLabeller.label` on the
same bytes in batches of the stream's batch size. Same model, threads and process.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.adapters.sqlite import SqliteChangeLog
from chalicelib.bootstrap import DATABASE_FILE, Components, build
from chalicelib.config import Settings, model_file
from chalicelib.events.stream import image_ids_to_label
from chalicelib.local.stream import LocalStreamPoller, SqliteStreamSource
from tools.bench.labeller import labeller_for
from tools.bench.local_server import status_counts

TENANT = "bench"
STREAM_ARN = "arn:aws:dynamodb:local:000000000000:table/ImageLabels/stream/bench"


@dataclass
class Worker:
    """A local service's components (stream worker off) and a poller for its stream."""

    components: Components
    poller: LocalStreamPoller
    database_file: Path


def local_worker(data_dir: Path, model: str) -> Worker:
    settings = Settings(
        data_dir=data_dir, model=model, model_path=model_file(model), local_stream=False
    )
    built = build(settings)
    assert built.database is not None, "the local backend has a database"
    labelling = built.use_cases.labelling

    def handler(event: dict[str, Any], context: Any) -> None:
        """What app.label_new_images does with a stream batch."""
        labelling.label_images(image_ids_to_label(event["Records"]))

    source = SqliteStreamSource(SqliteChangeLog(built.database), STREAM_ARN)
    poller = LocalStreamPoller(
        source,
        handler,
        batch_size=settings.stream_batch_size,
        poll_seconds=settings.stream_poll_seconds,
    )
    return Worker(built, poller, data_dir / DATABASE_FILE)


def submit_all(worker: Worker, images: Sequence[bytes]) -> None:
    submission = worker.components.use_cases.submission
    for data in images:
        submission.submit_upload(TENANT, data)


def deliver_all(worker: Worker) -> int:
    """Deliver the stream's batches until none is left; how many records it held."""
    delivered = 0
    while records := worker.poller.deliver_pending():
        delivered += records
    return delivered


def worker_throughput(model: str, images: Sequence[bytes], warm_up: bytes) -> dict[str, float]:
    """Images/s of the worker labelling `images` (submitted beforehand, not timed), and of
    the in-process labeller on the same bytes at the stream's batch size.

    The two take turns batch by batch: the worker delivers one stream batch (the next
    `batch` images in submit order), then the labeller labels those same images, each
    timed apart; so both meet the same moments of a noisy machine."""
    batch = Settings().stream_batch_size
    labeller = labeller_for(model)
    list(labeller.label([warm_up], Settings().top_k))
    worker_seconds = labeller_seconds = 0.0
    with tempfile.TemporaryDirectory() as folder:
        worker = local_worker(Path(folder) / "data", model)
        # The service's metrics go to stdout as Lambda's do, not into the bench's table.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            submit_all(worker, [warm_up])
            deliver_all(worker)  # the model's session is created on the first label
            submit_all(worker, images)
            for start in range(0, len(images), batch):
                started = time.perf_counter()
                delivered = worker.poller.deliver_pending()
                worker_seconds += time.perf_counter() - started
                if delivered != len(images[start : start + batch]):
                    raise RuntimeError(f"the stream delivered {delivered} records, not a batch")
                started = time.perf_counter()
                list(labeller.label(images[start : start + batch], Settings().top_k))
                labeller_seconds += time.perf_counter() - started
        counts = status_counts(worker.database_file)
        if worker.components.database is not None:
            worker.components.database.close()
    if counts.get("CLASSIFIED") != len(images) + 1:
        raise RuntimeError(f"not every image was classified by the worker: {counts}")
    return {
        "worker_images_per_s": len(images) / worker_seconds,
        "labeller_images_per_s": len(images) / labeller_seconds,
        "batch_size": float(batch),
    }
