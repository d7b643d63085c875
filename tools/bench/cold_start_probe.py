"""One cold start, in a fresh process: import the app, then label one image; then the
peak memory once a stream batch of mixed photos has been labelled.

Run by tools/bench/cold_start.py as `python -m tools.bench.cold_start_probe`; prints one JSON
line. This is what a new Lambda container pays before its first answer: the import of
app.py with everything it pulls in, then the first label (the model session is created
then, lazily), through the service as the stream handler calls it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.use_cases import UseCases

# The tenant of the images the probe submits (what bench-only callers use).
TENANT = "legacy"


def _submitted_batch(service: UseCases) -> list[str]:
    """A stream batch's worth of mixed photos, the largest 12-megapixel ones included."""
    from chalicelib.config import Settings
    from tools.bench.photos import mixed_photos

    photos = mixed_photos(Settings.stream_batch_size, first=10**6)
    return [
        service.submission.submit_upload(TENANT, photo.data).record.image_id for photo in photos
    ]


def main() -> int:
    photo = sys.stdin.buffer.read()
    started = time.perf_counter()
    import app  # noqa: F401  (the import itself is what is measured)

    imported = time.perf_counter()
    from chalicelib.bootstrap import use_cases

    with tempfile.TemporaryDirectory() as folder:
        os.environ["IMAGELABELLER_DATA_DIR"] = folder
        service = use_cases()
        image_id = service.submission.submit_upload(TENANT, photo).record.image_id
        labelled_from = time.perf_counter()
        report = service.labelling.label_images([image_id])
        labelled = time.perf_counter()
        if report.classified != [image_id]:
            raise SystemExit(f"the image was not classified: {report}")
        from tools.bench.timing import peak_rss_mb

        first_peak = peak_rss_mb()
        batch = _submitted_batch(service)
        if len(service.labelling.label_images(batch).classified) != len(batch):
            raise SystemExit("a batch image was not classified")
    figures = {
        "import_s": imported - started,
        "first_label_s": labelled - labelled_from,
        "peak_rss_mb": first_peak,
        "batch_peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
