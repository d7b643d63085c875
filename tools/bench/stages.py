"""Where one image's time goes, stage by stage: `python -m tools.bench.stages`.

The local service is wired as `make run` wires it (chalicelib.bootstrap.build: SQLite and
an image folder), with its stream worker off. Timers wrap the adapters' and the imaging
module's functions for the length of the run, so the service's own code runs unchanged:

1. --images photos (tools/bench/photos.py; --photos web, the default, or mixed) are
   submitted through the submission use case: the upload's checks, the dedup lookup,
   storing the file, inserting the record;
2. the local stream poller delivers the change log in the stream's batches to the
   handler Lambda runs, until the log is empty: reading the stream, the record and the
   image, decoding, preprocessing, the model, the record's update with its index entries;
3. --singles small JPEGs are submitted one at a time with the poller running in its
   thread, as `chalice local` runs it: the stream's wait is the time from the record's
   insert to the handler's start.

Each stage is its total time over the run divided by the images: ms per image. "rest"
is the part of a step's wall time no timer covers (ids, logs, metrics, Python between
the calls). With --threads 1 (the default: a Lambda function's one vCPU at 1,769 MB) the
stages add up to the wall time; with more, decoding overlaps itself on the threads.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.sqlite import SqliteChangeLog, SqliteLabelTable
from chalicelib.bootstrap import build
from chalicelib.config import DEFAULT_MODEL, MODEL_NAMES, Settings, model_file
from chalicelib.domain import imaging
from chalicelib.events.stream import image_ids_to_label
from chalicelib.local.stream import LocalStreamPoller, SqliteStreamSource
from tools.bench.photos import PHOTO_SETS, small_jpeg
from tools.bench.worker import STREAM_ARN, TENANT

# (where, attribute, stage): every function timed, and the stage its time counts to.
SUBMIT_STAGES = (
    (imaging, "inspect_image", "upload check (format, size, whole file)"),
    (SqliteLabelTable, "find_by_sha256", "dedup lookup"),
    (FolderImageStore, "put_new", "store the image file (fsync)"),
    (SqliteLabelTable, "insert", "record insert (+ change log)"),
)
WORKER_STAGES = (
    (SqliteStreamSource, "read", "stream read (change log → records)"),
    (SqliteStreamSource, "acknowledge", "stream checkpoint"),
    (SqliteLabelTable, "get", "record read"),
    (FolderImageStore, "get", "image read"),
    (imaging, "decode_rgb", "decode"),
    (imaging, "crop_and_resize", "preprocess: crop + resize"),
    (imaging, "normalise", "preprocess: normalise"),
    (imaging, "normalise_one", "preprocess: normalise"),
    (OnnxLabeller, "infer", "inference"),
    (SqliteLabelTable, "complete", "record update + index writes"),
    (SqliteLabelTable, "fail", "record update + index writes"),
)
SUBMIT_TOTAL = "submit"
WORKER_TOTAL = "worker"


@dataclass
class Stopwatch:
    """Seconds per stage, summed over every call on every thread (a call within a call
    of the same stage on its thread counts once)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: threading.local = field(default_factory=threading.local)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def timed(self, stage: str, work: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            running: set[str] = self._running.__dict__.setdefault("stages", set())
            if stage in running:
                return work(*args, **kwargs)
            running.add(stage)
            started = time.perf_counter()
            try:
                return work(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - started)
                running.discard(stage)

        return timed_call


@contextlib.contextmanager
def timers(watch: Stopwatch, stages: tuple[tuple[Any, str, str], ...]) -> Iterator[None]:
    """Each (owner, attribute) replaced by its timed self while the block runs; one the
    code does not have (any more) is left out, and its time shows in "rest"."""
    present = [(owner, name, stage) for owner, name, stage in stages if hasattr(owner, name)]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in present]
    try:
        for (owner, name, stage), (_, _, original) in zip(present, originals, strict=True):
            setattr(owner, name, watch.timed(stage, original))
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


@dataclass
class Profile:
    model: str
    threads: int
    images: int
    photos: str
    batch_size: int
    submit: dict[str, float]  # ms per image
    worker: dict[str, float]  # ms per image
    stream_wait_ms: list[float]  # one per lone image

    def text(self) -> str:
        lines = [
            f"{datetime.date.today().isoformat()}: {self.model}, {self.images} {self.photos} "
            f"photos, stream batches of {self.batch_size}, {self.threads} lane(s)",
            "",
        ]
        width = max(len(stage) for stage in [*self.submit, *self.worker]) + 2
        for title, stages in (("submit", self.submit), ("labelling worker", self.worker)):
            lines.append(f"{title:<{width}}{'ms/image':>10}{'share':>8}")
            total = stages["total"]
            for stage, ms in stages.items():
                share = f"{100 * ms / total:.0f} %" if total else "-"
                lines.append(f"  {stage:<{width - 2}}{ms:>10.2f}{share:>8}")
            lines.append("")
        waits = self.stream_wait_ms
        lines.append(
            f"stream wait, insert committed → handler starts, {len(waits)} lone images: "
            f"median {statistics.median(waits):.1f} ms, max {max(waits):.1f} ms"
        )
        return "\n".join(lines)


def per_image(
    watch: Stopwatch, stages: tuple[tuple[Any, str, str], ...], total: str, images: int
) -> dict[str, float]:
    """Each stage's ms per image in the order given, the rest of `total`'s time, the total."""
    names = list(dict.fromkeys(stage for _, _, stage in stages))
    figures = {name: 1000 * watch.seconds.get(name, 0.0) / images for name in names}
    whole = 1000 * watch.seconds[total] / images
    figures["rest"] = whole - sum(figures.values())
    figures["total"] = whole
    return figures


def profile(model: str, images: int, singles: int, threads: int, photo_set: str) -> Profile:
    photos = [photo.data for photo in PHOTO_SETS[photo_set](images, int(time.time()))]
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            data_dir=Path(folder) / "data",
            model=model,
            model_path=model_file(model),
            onnx_threads=threads,
            local_stream=False,
        )
        built = build(settings)
        assert built.database is not None, "the local backend has a database"
        use_cases = built.use_cases
        watch = Stopwatch()
        started_at: dict[str, float] = {}

        def handler(event: dict[str, Any], context: Any) -> None:
            """app.label_new_images, noting when each image's batch started."""
            started = time.perf_counter()
            image_ids = image_ids_to_label(event["Records"])
            for image_id in image_ids:
                started_at[image_id] = started
            use_cases.labelling.label_images(image_ids)

        def submit(data: bytes) -> str:
            started = time.perf_counter()
            try:
                return use_cases.submission.submit_upload(TENANT, data).record.image_id
            finally:
                watch.add(SUBMIT_TOTAL, time.perf_counter() - started)

        source = SqliteStreamSource(SqliteChangeLog(built.database), STREAM_ARN)
        poller = LocalStreamPoller(
            source,
            handler,
            settings.stream_batch_size,
            settings.stream_poll_seconds,
            wait_for_changes=built.database.wait_for_commit,
        )
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            submit(small_jpeg(-5))  # the model's session is created on the first label
            while poller.deliver_pending():
                pass
            watch.seconds.clear()
            with timers(watch, SUBMIT_STAGES + WORKER_STAGES):
                for data in photos:
                    submit(data)
                started = time.perf_counter()
                while poller.deliver_pending():
                    pass
                watch.add(WORKER_TOTAL, time.perf_counter() - started)
            submitted = per_image(watch, SUBMIT_STAGES, SUBMIT_TOTAL, images)
            worker = per_image(watch, WORKER_STAGES, WORKER_TOTAL, images)
            waits = _stream_waits(poller, submit, started_at, singles)
        built.database.close()
    return Profile(
        model, threads, images, photo_set, settings.stream_batch_size, submitted, worker, waits
    )


def _stream_waits(
    poller: LocalStreamPoller,
    submit: Callable[[bytes], str],
    started_at: dict[str, float],
    singles: int,
) -> list[float]:
    """ms from a lone image's record insert committing to its batch's handler starting,
    with the poller in its own thread as `chalice local` runs it."""
    inserted_at: dict[str, float] = {}
    insert = SqliteLabelTable.insert

    def noted_insert(table: SqliteLabelTable, record: Any, **options: Any) -> None:
        insert(table, record, **options)
        inserted_at[record.image_id] = time.perf_counter()

    waits = []
    poller.start()
    try:
        with _replaced(SqliteLabelTable, "insert", noted_insert):
            for n in range(singles):
                image_id = submit(small_jpeg(-100 - n))
                deadline = time.perf_counter() + 30
                while image_id not in started_at and time.perf_counter() < deadline:
                    time.sleep(0.0005)
                if image_id not in started_at:
                    raise RuntimeError(f"the stream never delivered {image_id}")
                waits.append(1000 * (started_at[image_id] - inserted_at[image_id]))
                time.sleep(0.05)  # labelled before the next one is sent
    finally:
        poller.stop()
    return waits


@contextlib.contextmanager
def _replaced(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=MODEL_NAMES)
    parser.add_argument("--images", type=int, default=96, help="photos profiled")
    parser.add_argument("--photos", default="web", choices=sorted(PHOTO_SETS))
    parser.add_argument("--singles", type=int, default=10, help="lone images for the wait")
    parser.add_argument("--threads", type=int, default=1, help="the labeller's lanes")
    args = parser.parse_args(argv)
    print(profile(args.model, args.images, args.singles, args.threads, args.photos).text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
